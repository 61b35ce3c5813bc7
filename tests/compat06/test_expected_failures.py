"""tests/compat06/expected_failures.txt: each entry says why, and a deliberate change is documented."""

from __future__ import annotations

import re
from pathlib import Path

from compat06_support import expected_failures

HERE = Path(__file__).parent
DIFFERENCES = HERE.parents[1] / "docs" / "differences-from-0.6.md"
KINDS = ("deliberate: ", "private detail: ", "issue 24, helper D2's part")


def test_every_entry_is_a_documented_difference_or_a_private_detail() -> None:
    headings = {line.lstrip("#").strip() for line in DIFFERENCES.read_text().splitlines() if line.startswith("#")}
    listed = expected_failures(HERE / "expected_failures.txt")
    for test_id, reason in listed.items():
        assert reason.startswith(KINDS), f"{test_id}: a reason starts with one of {KINDS}"
        references = re.findall(r'\("([^"]+)"\)', reason)
        if reason.startswith("deliberate: "):
            assert references, f"{test_id}: a deliberate change names its section of {DIFFERENCES.name}"
        for reference in references:
            assert reference in headings, f"{test_id}: no section {reference!r} in {DIFFERENCES.name}"
