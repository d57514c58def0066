"""Local token estimate for `/v1/messages/count_tokens` when the route's provider cannot count."""
from __future__ import annotations

import orjson

from .ir import ImageBlock, Request, TextBlock, ThinkingBlock, ToolResultBlock, ToolUseBlock

IMAGE_TOKENS = 1600


def _text_tokens(text: str) -> int:
    return (len(text) + 3) // 4


def count_tokens(req: Request) -> int:
    total = sum(_text_tokens(b.text) for b in req.system)
    for msg in req.messages:
        total += 3
        for block in msg.content:
            if isinstance(block, TextBlock):
                total += _text_tokens(block.text)
            elif isinstance(block, ThinkingBlock):
                total += _text_tokens(block.thinking)
            elif isinstance(block, ToolUseBlock):
                total += _text_tokens(block.name) + _text_tokens(orjson.dumps(block.input).decode())
            elif isinstance(block, ToolResultBlock):
                for part in block.content:
                    total += IMAGE_TOKENS if isinstance(part, ImageBlock) else _text_tokens(part.text)
            elif isinstance(block, ImageBlock):
                total += IMAGE_TOKENS
    for tool in req.tools:
        total += _text_tokens(tool.name + (tool.description or "")
                              + orjson.dumps(tool.input_schema).decode())
    return max(1, total)
