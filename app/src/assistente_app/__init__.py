"""Assistente Digital omnichannel API and worker."""

__version__ = "0.1.0"
