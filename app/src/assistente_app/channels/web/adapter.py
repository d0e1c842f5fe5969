"""The web channel as the app sees it: the widget and the REST + WebSocket contract. Replies
are pushed over the WebSocket by the event hub, so the worker sends nothing itself."""

from __future__ import annotations

from fastapi import APIRouter

from assistente_app.channels.base import ChannelAdapter
from assistente_app.channels.web import NAME, api, widget
from assistente_app.channels.web.settings import WebSettings

router = APIRouter()
router.include_router(widget.router)
router.include_router(api.router)

ADAPTER = ChannelAdapter(
    name=NAME,
    settings=WebSettings,
    router=router,
    outbound=None,
    static=("/static", widget.STATIC_DIR),
    message_routes=(api.MESSAGES_ROUTE,),
)
