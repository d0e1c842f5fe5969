"""The TwiML subset we speak (Say, Gather, Redirect, Dial, Hangup) and Twilio's signature."""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterable
from xml.sax.saxutils import escape, quoteattr

from assistente_app.core.security import constant_time_equals

LANGUAGE = "pt-BR"


def valid_signature(
    *, auth_token: str, url: str, params: Iterable[tuple[str, str]], header: str | None
) -> bool:
    """``X-Twilio-Signature``: base64 HMAC-SHA1 of the URL followed by the POST parameters
    sorted by name, each as name+value."""
    if not header:
        return False
    data = url + "".join(k + v for k, v in sorted(params))
    digest = hmac.new(auth_token.encode(), data.encode(), hashlib.sha1).digest()
    return constant_time_equals(header, base64.b64encode(digest).decode())


def say(text: str) -> str:
    return f"<Say language={quoteattr(LANGUAGE)}>{escape(text)}</Say>"


def gather(*, action: str, prompt: str | None = None, timeout_s: int = 8) -> str:
    inner = say(prompt) if prompt else ""
    return (
        f'<Gather input="speech dtmf" language={quoteattr(LANGUAGE)} speechTimeout="auto" '
        f'timeout="{timeout_s}" method="POST" action={quoteattr(action)}>{inner}</Gather>'
    )


def redirect(url: str) -> str:
    return f'<Redirect method="POST">{escape(url)}</Redirect>'


def dial(target: str) -> str:
    if target.startswith("sip:"):
        return f"<Dial><Sip>{escape(target)}</Sip></Dial>"
    return f"<Dial>{escape(target)}</Dial>"


def hangup() -> str:
    return "<Hangup/>"


def response(*verbs: str) -> str:
    return '<?xml version="1.0" encoding="UTF-8"?><Response>' + "".join(verbs) + "</Response>"
