"""Live reload (SIGHUP): the config file and its key files are read again; a valid config becomes
a new `Gateway` that serves every new request, while requests and streams already running finish
on the old one (closed when its last request ends). An invalid file changes nothing: one
`error:` line naming the key, and the running config stays.

What a reload cannot change: the listening address (a new `server.listen` is reported and
ignored until a restart) and environment variables (the process keeps the ones it started
with). Metrics and key cooldowns carry over; per-process state (limits' counters, breakers,
keys taken out, balancer statistics) starts afresh with the new gateway."""
from __future__ import annotations

import logging
from dataclasses import replace

from aiohttp import web

from .accesslog import _HANDLER_ATTR, config_secrets, setup_logging
from .config import Config, ConfigError, load_config
from .server import LIVE, Gateway

log = logging.getLogger("ferryllm.reload")


def read(path: str, running: Config) -> Config | None:
    """The new config, or None after logging one `error:` line (problems joined)."""
    try:
        config = load_config(path)
    except ConfigError as e:
        log.error("error: reload rejected, still serving the running config: %s", e)
        return None
    for warning in config.warnings:
        log.warning("%s", warning)
    listen = running.server.listen
    if config.server.listen != listen:
        log.warning("server.listen: a new address needs a restart; still listening on %s",
                    listen)
        config = replace(config, server=replace(config.server, listen=listen))
    return config


async def reload_app(app: web.Application, path: str | None = None) -> bool:
    """Reload `app` from `path` (default: the file its config came from). True when the new
    config serves from now on."""
    live = app[LIVE]
    running = live.gateway.config
    path = path or running.source
    if not path:
        log.warning("reload: this gateway was not started from a config file; nothing to read")
        return False
    config = read(path, running)
    if config is None:
        return False
    try:
        new = Gateway(config, previous=live.gateway)
    except Exception as exc:  # noqa: BLE001 - a reload must never stop a serving gateway
        log.error("error: reload rejected, still serving the running config: %s: %s", path,
                  type(exc).__name__)
        return False
    await new.start()
    old = live.swap(new)
    if any(getattr(h, _HANDLER_ATTR, False) for h in logging.getLogger("ferryllm").handlers):
        # set up by `serve`: the new level and format, and the secrets of both configs (the
        # old gateway's streams may still log)
        setup_logging(config.logging.level, config.logging.format,
                      secrets=[*config_secrets(old.config), *config_secrets(config)])
    log.info("reloaded %s (%d request(s) finishing on the previous config)", path, old.active)
    return True
