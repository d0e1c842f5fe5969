"""Entry point for `pulumi up` where the Python language host is installed (see README)."""

from assistente_pulumi.program import main

main()
