"""The test tree's own rules: pytest imports test files by basename (rootdir mode, no packages)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

TESTS = Path(__file__).resolve().parent


def test_test_file_basenames_are_unique() -> None:
    # Two tests/*/test_x.py files make the whole session stop at collection ("import file
    # mismatch"), though each directory passes on its own.
    names = Counter(p.name for p in TESTS.rglob("test_*.py"))
    assert [n for n, count in names.items() if count > 1] == []
