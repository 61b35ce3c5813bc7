"""Every benchmark script in bench/ imports: a name renamed in bench/harness.py (or anywhere they import from)
breaks the script that still uses the old one here, not at the start of a twenty-minute run."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"
SCRIPTS = sorted(path.stem for path in BENCH.glob("*.py"))


@pytest.fixture
def bench_on_path() -> Iterator[None]:
    sys.path.insert(0, str(BENCH))
    try:
        yield
    finally:
        sys.path.remove(str(BENCH))
        for name, module in list(sys.modules.items()):  # the scripts' own modules (harness...), not their imports
            if Path(getattr(module, "__file__", None) or "/").parent == BENCH:
                del sys.modules[name]


def test_bench_has_scripts() -> None:
    assert "harness" in SCRIPTS and "client_bench" in SCRIPTS


@pytest.mark.parametrize("name", SCRIPTS)
def test_bench_script_imports(name: str, bench_on_path: None) -> None:
    importlib.import_module(name)
