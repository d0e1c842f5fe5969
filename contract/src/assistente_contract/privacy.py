"""Personal data in free text (LGPD): the one masking every log writer of the project uses —
the app's API and worker, and the Rasa action server, which run in different virtualenvs.

CNJ case numbers, CPF, e-mail addresses and Brazilian phone numbers become ``[processo]``,
``[cpf]``, ``[email]`` and ``[telefone]``. Protocol numbers are kept: they are not personal
data, and the logs are searched by them.
"""

from __future__ import annotations

import re

__all__ = ["mask_pii"]

# CNJ unified case number NNNNNNN-DD.AAAA.J.TR.OOOO, formatted or as 20 digits.
_CNJ = re.compile(r"(?<!\d)\d{7}[-.\s]?\d{2}[.\s]?\d{4}[.\s]?\d[.\s]?\d{2}[.\s]?\d{4}(?!\d)")
# CPF: 11 digits, grouped 3.3.3-2 with dots, dashes or spaces (or none).
_CPF = re.compile(r"(?<!\d)\d{3}[.\s]?\d{3}[.\s]?\d{3}[-.\s]?\d{2}(?!\d)")
_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")
# Brazilian phones: optional +55, optional area code in parentheses, 8-9 digit subscriber.
_PHONE = re.compile(r"(?<![\d-])(?:\+?55[\s-]?)?(?:\(?\d{2}\)?[\s-]?)?9?\d{4}[\s-]?\d{4}(?![\d-])")
_PROTOCOL = re.compile(r"\b\d{8}-\d{6}-\d\b")


def mask_pii(text: str) -> str:
    """Replace CNJ numbers, CPF, e-mail and phone numbers; protocol numbers are kept."""
    protocols: list[str] = []

    def _keep(match: re.Match[str]) -> str:
        protocols.append(match.group(0))
        return f"\x00{len(protocols) - 1}\x00"

    text = _PROTOCOL.sub(_keep, text)
    text = _EMAIL.sub("[email]", text)
    text = _CNJ.sub("[processo]", text)
    text = _CPF.sub("[cpf]", text)
    text = _PHONE.sub("[telefone]", text)
    for index, value in enumerate(protocols):
        text = text.replace(f"\x00{index}\x00", value)
    return text
