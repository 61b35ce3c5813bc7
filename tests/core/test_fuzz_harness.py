"""The fuzz targets of fuzz/ without a fuzzer: every seed passes, and the harness catches what it must.

The seeds replayed here are the inputs ``scripts/test``'s short atheris run
starts from, so a target that breaks on its own seeds fails here first, with
a plain traceback. The codec fixture of tests/core is irrelevant to the
targets (each compares both codecs itself); it only runs this file twice.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

FUZZ = Path(__file__).resolve().parents[2] / "fuzz"


@pytest.fixture(scope="module")
def targets() -> Iterator[dict[str, Callable[[bytes], None]]]:
    sys.path.insert(0, str(FUZZ))
    try:
        from fuzz_targets import TARGETS

        yield TARGETS
    finally:
        sys.path.remove(str(FUZZ))


SEEDS = sorted((path.parent.name, path) for path in (FUZZ / "corpus").glob("*/*"))


def test_every_target_has_seeds() -> None:
    assert {target for target, _ in SEEDS} == {"codec", "frames", "deflate", "handshake"}


@pytest.mark.parametrize(("target", "seed"), SEEDS, ids=[f"{t}/{p.name}" for t, p in SEEDS])
def test_seed_passes_its_target(targets: dict[str, Callable[[bytes], None]], target: str, seed: Path) -> None:
    targets[target](seed.read_bytes())


@pytest.mark.parametrize("target", ["codec", "frames", "deflate", "handshake"])
@pytest.mark.parametrize("data", [b"", b"\x00", b"\xff" * 64, bytes(range(256))])
def test_any_bytes_are_an_input(targets: dict[str, Callable[[bytes], None]], target: str, data: bytes) -> None:
    # Every byte string must reach the code under test, never fail in the harness itself.
    targets[target](data)


def test_a_disagreement_between_codecs_is_a_finding(
    targets: dict[str, Callable[[bytes], None]], monkeypatch: pytest.MonkeyPatch
) -> None:
    from fuzz_common import CODECS, Finding

    from ws4py.protocol import _frames_py, frames

    if len(CODECS) < 2:
        pytest.skip("only one codec built")
    real = _frames_py.parse_frames

    def one_byte_short(*args: object) -> object:
        frames, pos, error = real(*args)  # type: ignore[arg-type]
        return [(b0, payload[:-1]) for b0, payload in frames], pos, error

    seed = next(path for target, path in SEEDS if target == "frames" and "server-text" in path.name)
    # The harness switches codecs with frames.use, which looks the functions up then: the broken one.
    monkeypatch.setattr(_frames_py, "parse_frames", one_byte_short)
    try:
        with pytest.raises(Finding, match="codecs disagree"):
            targets["frames"](seed.read_bytes())
    finally:
        monkeypatch.undo()
        frames.use(frames.implementation)
