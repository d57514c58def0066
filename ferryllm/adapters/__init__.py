"""Adapters face the provider: IR ⇄ provider JSON/SSE. They never import entries."""
