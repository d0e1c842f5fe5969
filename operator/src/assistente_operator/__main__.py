"""Allows ``python -m assistente_operator``."""

from assistente_operator.cli import main

raise SystemExit(main())
