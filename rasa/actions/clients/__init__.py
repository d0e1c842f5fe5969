"""Clients of external services (each with a configurable base URL)."""
