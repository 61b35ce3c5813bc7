"""``python -m ws4py``: serve an application, talk to a server from a terminal, publish to a broker.

::

    python -m ws4py serve MODULE:ATTR [--port 8765] [--workers 4] [--broker redis://...]
    python -m ws4py connect ws://127.0.0.1:8765/
    python -m ws4py publish redis://127.0.0.1:6379 CHANNEL MESSAGE

``python -m ws4py --help`` and ``python -m ws4py COMMAND --help`` list the
options. Each command lives in a module of its own (:mod:`.serve`,
:mod:`.terminal`, :mod:`.publisher`); :mod:`.main` only parses the command line.
"""

from .errors import CliError
from .main import build_parser, main

__all__ = ["CliError", "build_parser", "main"]
