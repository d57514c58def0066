"""ferryllm: a universal LLM protocol gateway (client protocol → IR → provider protocol)."""
__version__ = "0.1.0"

# Every upstream request says who sends it (a provider's `headers` in the config may override
# it). Set here rather than left to aiohttp, whose own would name Python and aiohttp.
USER_AGENT = f"ferryllm/{__version__}"
