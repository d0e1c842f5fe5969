"""The web contract: REST + WebSocket, and the accessible chat widget."""

NAME = "web"
