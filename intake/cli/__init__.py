"""`intake`: the operator's and staff's command line, one module per area.

`root` holds the command group and what the commands share; each area module adds its commands to
it, and this package imports them all (they import `root`, never each other or this package).
"""
from intake.cli import cases, digests, mail, ops, questions, staff  # noqa: F401  (they add their commands)
from intake.cli.root import cli, main

__all__ = ["cli", "main"]
