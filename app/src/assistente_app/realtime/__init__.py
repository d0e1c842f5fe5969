"""Live conversation events fanned out to every API replica (Redis pub/sub)."""
