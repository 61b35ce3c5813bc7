"""The one error the commands raise for what the user got wrong: printed as a line, no traceback."""

from __future__ import annotations


class CliError(Exception):
    """A mistake or a condition the user can fix (a bad ``MODULE:ATTR``, a port in use...).

    ``python -m ws4py`` prints ``error: <message>`` on stderr and exits with
    :attr:`status` (2, as argparse does for a bad option, unless said otherwise).
    """

    def __init__(self, message: str, status: int = 2) -> None:
        super().__init__(message)
        self.status = status
