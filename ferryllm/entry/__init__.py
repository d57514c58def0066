"""Entries face the client: client JSON/SSE ⇄ IR. They never import adapters."""
