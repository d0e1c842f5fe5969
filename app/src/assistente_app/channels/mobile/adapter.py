"""The mobile-app channel as the app sees it: no routes of its own (it speaks the web contract)
and no sender (replies are pushed over the WebSocket, like the widget's)."""

from __future__ import annotations

from assistente_app.channels.base import ChannelAdapter
from assistente_app.channels.mobile import NAME
from assistente_app.channels.mobile.settings import MobileSettings

ADAPTER = ChannelAdapter(name=NAME, settings=MobileSettings, router=None, outbound=None)
