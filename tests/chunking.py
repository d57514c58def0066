"""Ways to cut one byte stream into network reads. A sans-IO parser must give the same output
for every one of them (an SSE event is atomic: how the bytes arrived never shows in the output).

    from tests.chunking import chunkings
    for chunks in chunkings(data): ...
"""
from __future__ import annotations

from collections.abc import Iterator


def chunkings(data: bytes) -> Iterator[list[bytes]]:
    """Whole; one byte per read; split once after every UTF-8 lead byte and every `\\r`
    (inside a multi-byte character, between `\\r` and `\\n`); one line per read."""
    yield [data]
    yield [data[i:i + 1] for i in range(len(data))]
    for i, byte in enumerate(data):
        if byte >= 0xC0 or byte == 0x0D:  # inside a character or a \r\n
            yield [data[:i + 1], data[i + 1:]]
    lines = data.splitlines(keepends=True)
    if len(lines) > 1:
        yield lines
