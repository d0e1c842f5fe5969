"""`python -m serving run --enable-api ...`: Rasa's command line, with `serving.patches` applied."""

from __future__ import annotations

import sys

from serving import patches


def main() -> int:
    patches.apply()
    from rasa.__main__ import main as rasa_main

    sys.argv[0] = "rasa"
    rasa_main()
    return 0


if __name__ == "__main__":
    sys.exit(main())
