"""The court's own mobile app. It speaks the web contract (REST + WebSocket, see channels/web)
with ``{"channel": "mobile"}``, so its conversations are counted, queued and answered as
mobile ones."""

NAME = "mobile"
