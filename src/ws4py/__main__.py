"""``python -m ws4py``: the command line (``serve``, ``connect``, ``publish``); see :mod:`ws4py.cli`."""

import signal

from ws4py.cli import main

if __name__ == "__main__":
    status = main()
    # Done: a SIGTERM sent again while the interpreter exits (which puts the default handler
    # back) must not turn a clean exit into "killed by SIGTERM".
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise SystemExit(status)
