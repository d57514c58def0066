"""Adapters face the provider: IR ⇄ provider JSON/SSE. They never import entries."""

from .. import __version__

# Every upstream request says who sends it (a provider's `headers` in the config may override
# it). Set here rather than left to aiohttp, whose own would name Python and aiohttp.
USER_AGENT = f"ferryllm/{__version__}"
