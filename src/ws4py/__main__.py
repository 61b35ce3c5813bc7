"""``python -m ws4py``: the command line (``serve``, ``connect``, ``publish``); see :mod:`ws4py.cli`."""

from ws4py.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
