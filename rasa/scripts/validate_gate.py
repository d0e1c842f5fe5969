"""Reads the output of `rasa data validate` and fails on any warning, as --fail-on-warnings
would, except one Rasa cannot get right: a response uttered only by a custom action ("The
utterance 'utter_x' is not used in any story or rule"). Those are accepted when the actions name
them in `actions.responses`, whose every name the actions' tests render from the domain.

Usage: python rasa/scripts/validate_gate.py VALIDATE_LOG
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from actions.responses import ALL as ACTION_RESPONSES

_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_WARNING = re.compile(r"UserWarning: (.*)")
_UNUSED = re.compile(r"The utterance '([^']+)' is not used in any story or rule\.")


def main() -> int:
    log = _ANSI.sub("", Path(sys.argv[1]).read_text(encoding="utf-8", errors="replace"))
    problems = []
    accepted = 0
    for warning in _WARNING.findall(log):
        unused = _UNUSED.fullmatch(warning.strip())
        if unused and unused.group(1) in ACTION_RESPONSES:
            accepted += 1
            continue
        problems.append(warning.strip())
    print(f"rasa data validate: {accepted} response(s) used by actions, {len(problems)} warning(s)")
    for problem in problems:
        print(f"  {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
