"""The HTTP side shared by every router: dependencies, error mapping, middleware."""
