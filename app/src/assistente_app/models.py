"""Import every table module so ``Base.metadata`` is complete (used by Alembic)."""

from assistente_app.conversations.models import Conversation, Message
from assistente_app.core.db import Base
from assistente_app.lgpd.models import LgpdRequest

__all__ = ["Base", "Conversation", "LgpdRequest", "Message"]
