"""ferryllm: a universal LLM protocol gateway (client protocol → IR → provider protocol)."""
__version__ = "0.1.0"
