"""tests/uvicorn reuses the browser harness of tests/interop (chromium_page.py and its page)."""

from __future__ import annotations

import sys
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]
if str(TESTS / "interop") not in sys.path:
    sys.path.insert(0, str(TESTS / "interop"))
