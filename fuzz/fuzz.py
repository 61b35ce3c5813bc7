"""Run one fuzz target under atheris (libFuzzer): ``python fuzz/fuzz.py TARGET [libFuzzer options] [corpus dirs]``.

TARGET is one of ``codec``, ``frames``, ``deflate``, ``handshake``; the rest
goes to libFuzzer as it is (``-max_total_time=60``, ``-runs=N``,
``-artifact_prefix=DIR/``...). ws4py is imported under atheris's
instrumentation, so the fuzzer is guided by the coverage of its Python code
(the C codec runs uninstrumented, compared against the Python one on every
input). See README.md for the usual commands.
"""

from __future__ import annotations

import sys
import tempfile

import atheris  # type: ignore[import-not-found]


def main() -> None:
    if len(sys.argv) < 2 or sys.argv[1].startswith("-"):
        sys.exit(f"usage: {sys.argv[0]} TARGET [libFuzzer options] [corpus dirs]")
    name = sys.argv[1]
    with atheris.instrument_imports(include=["ws4py", "fuzz_common", "frames_targets", "handshake_targets"]):
        from fuzz_targets import TARGETS
    if name not in TARGETS:
        sys.exit(f"unknown target {name!r}; targets: {', '.join(TARGETS)}")
    options = sys.argv[2:]
    if not any(option.startswith("-artifact_prefix=") for option in options):
        # libFuzzer writes crash inputs to the current folder unless told otherwise: not into the repository.
        artifacts = tempfile.mkdtemp(prefix=f"ws4py-fuzz-{name}-")
        options.insert(0, f"-artifact_prefix={artifacts}/")
    atheris.Setup([sys.argv[0], *options], TARGETS[name])
    atheris.Fuzz()


if __name__ == "__main__":
    main()
