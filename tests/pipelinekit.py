"""A small simulated territory run end to end through Dagster, shared by the whole session.

`ran` (tests/conftest.py) is read by many test modules: a test that changes the data works on
`copy(ran, tmp_path)`, never on `ran` itself.
"""

from __future__ import annotations

import shutil
from datetime import date
from pathlib import Path

import pytest

from synchro_dagster.cli import run_months

MONTHS = [date(2025, 1, 1), date(2025, 2, 1), date(2025, 3, 1)]
KEY = "test-key-" + "0123456789abcdef" * 3
HOUSEHOLDS, SEED = 150, 3


def run(data: Path, months: list[date]) -> int:
    """`synchro run` on `data` for `months`, with the tests' key; its exit code."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SYNCHRO_PSEUDONYMISATION_KEY", KEY)
        mp.setenv("SYNCHRO_FIRST_MONTH", "2025-01")
        return run_months(data, months)


def copy(data: Path, tmp_path: Path) -> Path:
    """A copy of a data directory to change freely (without its Dagster home)."""
    target = tmp_path / "data"
    shutil.copytree(data, target, ignore=shutil.ignore_patterns("dagster_home"))
    return target
