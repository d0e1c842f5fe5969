"""Progress lines of the test bed's long steps (image builds, the real node's start), meant for
the person or CI log watching: a cold image build takes minutes and must not look like a hang.

Inside a test session pytest captures file descriptor 2, so `sys.stderr` (and even
`sys.__stderr__`, which writes to the same descriptor) ends up in a capture buffer that is shown
only for failed tests. The pytest plugin therefore calls `keep_terminal()` when it is imported,
before capturing starts, and the lines go to a copy of the original descriptor.
"""

from __future__ import annotations

import os
import sys
from typing import TextIO

_terminal: TextIO | None = None


def keep_terminal() -> None:
    """Send progress to what file descriptor 2 is now, whatever later redirects it."""
    global _terminal
    if _terminal is None:
        _terminal = os.fdopen(os.dup(2), "w", buffering=1, encoding="utf-8", errors="replace")


def report(tag: str, message: str) -> None:
    print(f"[{tag}] {message}", file=_terminal or sys.stderr, flush=True)
