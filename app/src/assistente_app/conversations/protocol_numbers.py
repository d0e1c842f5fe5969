"""Protocol numbers: ``AAAAMMDD-NNNNNN-D``, e.g. ``20261125-004217-3``.

* The date is the day of first contact in the court's time zone, so a clerk can tell at a glance
  when the attendance started.
* ``NNNNNN`` comes from a PostgreSQL sequence (taken modulo 10^6): uniqueness is guaranteed by
  the database without locks, even with many API replicas. A day would need more than a million
  new conversations to wrap, and the unique constraint still protects us if it did.
* ``D`` is a Luhn check digit over the 14 digits: it catches every single-digit mistake and most
  swapped neighbours when a citizen reads the number over the phone.
"""

from __future__ import annotations

import datetime as dt
import re

PROTOCOL_RE = re.compile(r"^(\d{8})-(\d{6})-(\d)$")


def luhn_digit(digits: str) -> int:
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = int(char)
        if index % 2 == 0:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return (10 - total % 10) % 10


def format_protocol(*, day: dt.date, sequence: int) -> str:
    body = f"{day:%Y%m%d}{sequence % 1_000_000:06d}"
    return f"{body[:8]}-{body[8:]}-{luhn_digit(body)}"


def is_valid_protocol(value: str) -> bool:
    match = PROTOCOL_RE.match(value)
    if not match:
        return False
    body = match.group(1) + match.group(2)
    return luhn_digit(body) == int(match.group(3))


def spoken(protocol: str) -> str:
    """Digits separated by spaces so a speech synthesiser reads them one by one."""
    return ", ".join(" ".join(part) for part in protocol.split("-"))
