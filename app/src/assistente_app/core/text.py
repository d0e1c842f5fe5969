"""Text PostgreSQL can store: no NUL character, no lone UTF-16 surrogate.

PostgreSQL's ``text`` refuses U+0000 and UTF-8 cannot encode a lone surrogate (JSON's ``"\\ud800"``
decodes to one), so either one reaching an INSERT is a server error. Requests are refused with a
422 (``CleanStr``); texts from a provider's webhook are cleaned instead (``storable``), because
refusing them would make the provider redeliver the whole batch.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator

_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def storable(value: str) -> str:
    """Drop NUL characters and replace lone surrogates with U+FFFD."""
    if not _UNSTORABLE.search(value):
        return value
    return _UNSTORABLE.sub(lambda m: "" if m.group(0) == "\x00" else "\ufffd", value)


def _refuse_unstorable(value: str) -> str:
    if _UNSTORABLE.search(value):
        raise ValueError("o texto contém caracteres inválidos (NUL ou surrogate isolado)")
    return value


CleanStr = Annotated[str, AfterValidator(_refuse_unstorable)]
"""A ``str`` field that refuses what PostgreSQL cannot store, with a 422."""
