"""Send N requests through the balancer, a few at a time; print how many each instance served
and how many were admitted, then one JSON line for scripts."""
from __future__ import annotations

import argparse
import asyncio
import collections
import json

import aiohttp

BODY = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hello"}]}


async def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--url", required=True)
    p.add_argument("--key", required=True)
    p.add_argument("--requests", type=int, default=60)
    p.add_argument("--concurrency", type=int, default=4)
    args = p.parse_args()
    statuses: collections.Counter = collections.Counter()
    served: collections.Counter = collections.Counter()
    todo = iter(range(args.requests))
    headers = {"authorization": f"Bearer {args.key}"}

    async def worker(s: aiohttp.ClientSession) -> None:
        for _ in todo:
            async with s.post(args.url + "/v1/chat/completions", json=BODY,
                              headers=headers) as r:
                await r.read()
                statuses[r.status] += 1
                served[r.headers.get("x-served-by", "?")] += 1

    async with aiohttp.ClientSession() as s:
        await asyncio.gather(*(worker(s) for _ in range(args.concurrency)))
    print(f"sent {args.requests} requests through the balancer")
    for name, n in sorted(served.items()):
        print(f"  instance {name}: answered {n}")
    print(f"  admitted (200): {statuses[200]}   refused (429): {statuses[429]}   "
          f"other: {sum(n for s, n in statuses.items() if s not in (200, 429))}")
    print(json.dumps({"status": dict(statuses), "served": dict(served)}))


if __name__ == "__main__":
    asyncio.run(main())
