// Loaded into a Node.js CLI under test with NODE_OPTIONS="--require <this file>" (child processes
// inherit it): every network attempt (fetch, socket connect, DNS lookup) is written to
// $FERRY_NETLOG as one JSON line {"kind", "target", "allowed"}, and any that is not loopback is
// refused on the spot, so a test proves the CLI stays on 127.0.0.1 without a packet leaving.
"use strict";
const dns = require("dns");
const fs = require("fs");
const net = require("net");

const LOG = process.env.FERRY_NETLOG;
const LOOPBACK = new Set(["127.0.0.1", "localhost", "::1", "[::1]"]);

function record(kind, target, allowed) {
  if (!LOG) return;
  try {
    fs.appendFileSync(LOG, JSON.stringify({ kind, target, allowed, pid: process.pid }) + "\n");
  } catch (err) { /* the log folder is gone: the test is over */ }
}

function refusal(target) {
  const err = new Error(`network access outside loopback refused by the test guard: ${target}`);
  err.code = "ECONNREFUSED";
  return err;
}

const realFetch = globalThis.fetch;
if (realFetch) {
  globalThis.fetch = function guardedFetch(input, init) {
    const url = String(input && input.url ? input.url : input);
    let host = null;
    try {
      const parsed = new URL(url);
      if (parsed.protocol === "http:" || parsed.protocol === "https:" ||
          parsed.protocol === "ws:" || parsed.protocol === "wss:") host = parsed.hostname;
    } catch (err) { /* not a URL: let fetch report it */ }
    if (host === null) return realFetch.call(this, input, init);  // data:, blob:, file:
    const allowed = LOOPBACK.has(host);
    record("fetch", url.split("?")[0], allowed);
    return allowed ? realFetch.call(this, input, init) : Promise.reject(refusal(url));
  };
}

const realConnect = net.Socket.prototype.connect;
net.Socket.prototype.connect = function guardedConnect(...args) {
  let opts = Array.isArray(args[0]) ? args[0][0] : args[0];
  if (typeof opts === "number") {
    opts = { port: opts, host: typeof args[1] === "string" ? args[1] : undefined };
  } else if (typeof opts === "string") {
    opts = { path: opts };
  }
  if (opts && typeof opts === "object" && !opts.path) {
    const host = opts.host || "localhost";
    const allowed = LOOPBACK.has(host);
    record("connect", `${host}:${opts.port}`, allowed);
    if (!allowed) {
      process.nextTick(() => this.destroy(refusal(host)));
      return this;
    }
  }
  return realConnect.apply(this, args);
};

const realLookup = dns.lookup;
dns.lookup = function guardedLookup(host, ...rest) {
  const allowed = LOOPBACK.has(host);
  record("lookup", host, allowed);
  if (allowed) return realLookup.call(this, host, ...rest);
  const callback = rest[rest.length - 1];
  const err = Object.assign(new Error(`getaddrinfo ENOTFOUND ${host}`),
                            { code: "ENOTFOUND", hostname: host });
  if (typeof callback === "function") process.nextTick(() => callback(err));
  return {};
};
const realPromiseLookup = dns.promises.lookup;
dns.promises.lookup = function guardedPromiseLookup(host, ...rest) {
  const allowed = LOOPBACK.has(host);
  record("lookup", host, allowed);
  return allowed ? realPromiseLookup.call(this, host, ...rest) : Promise.reject(refusal(host));
};
