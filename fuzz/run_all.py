"""A bounded run of every fuzz target, one after the other; exit status 1 on any finding.

    python fuzz/run_all.py                       15 s per target (what scripts/test runs)
    python fuzz/run_all.py --seconds 3600 --work /tmp/ws4py-fuzz
    python fuzz/run_all.py --targets frames,deflate -- -jobs=2 -workers=2

Each target starts from its seed corpus (fuzz/corpus/<target>/, only read:
libFuzzer writes the inputs it finds to the first corpus folder, which is
``<work>/<target>/corpus``). The work folder is a temporary one unless
``--work`` names one (outside the repository, or git-ignored); it is removed
after a clean run and kept, with the crash inputs in it, after a finding.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
TARGETS = ("codec", "frames", "deflate", "handshake")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=15, help="fuzzing time per target (default 15)")
    parser.add_argument("--targets", default=",".join(TARGETS), help="comma-separated (default: all)")
    parser.add_argument("--work", type=Path, help="folder for found inputs and crashes (default: a temporary one)")
    parser.add_argument("libfuzzer", nargs="*", help="more libFuzzer options, after --")
    args = parser.parse_args()

    work = args.work or Path(tempfile.mkdtemp(prefix="ws4py-fuzz-"))
    failed = []
    for target in args.targets.split(","):
        if target not in TARGETS:
            parser.error(f"unknown target {target!r}; targets: {', '.join(TARGETS)}")
        corpus = work / target / "corpus"
        corpus.mkdir(parents=True, exist_ok=True)
        command = [
            sys.executable,
            str(HERE / "fuzz.py"),
            target,
            f"-max_total_time={args.seconds}",
            "-timeout=20",  # seconds for one input: a hang is a finding
            "-rss_limit_mb=2048",  # memory beyond the limits is a finding too
            f"-artifact_prefix={work / target}{os.sep}",
            *args.libfuzzer,
            str(corpus),
            str(HERE / "corpus" / target),
        ]
        print(f"fuzz: {target} for {args.seconds} s", flush=True)
        # libFuzzer's progress lines go to stderr; kept quiet unless the run fails.
        result = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, check=False)
        if result.returncode != 0:
            print(result.stdout[-20_000:], file=sys.stderr)
            failed.append(target)
        else:
            stats = [line for line in result.stdout.splitlines() if line.startswith("#") and "DONE" in line]
            print(f"fuzz: {target}: {stats[-1] if stats else 'done'}", flush=True)
    if failed:
        print(f"fuzz: findings in {', '.join(failed)}; the inputs are in {work}", file=sys.stderr)
        print("fuzz: replay one with: python fuzz/fuzz.py TARGET FILE", file=sys.stderr)
        return 1
    if args.work is None:
        shutil.rmtree(work)
    return 0


if __name__ == "__main__":
    sys.exit(main())
