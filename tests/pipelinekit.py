"""A small simulated territory run end to end through Dagster, shared by the whole session.

`ran` (tests/conftest.py) is read by many test modules: a test that changes the data works on
`copy(ran, tmp_path)`, never on `ran` itself.
"""

from __future__ import annotations

import shutil
from dataclasses import replace
from datetime import date
from pathlib import Path

import pytest

from synchro_dagster.cli import run_months
from synchro_dagster.synthetic.params import HiddenPart, TerritoryParams

MONTHS = [date(2025, 1, 1), date(2025, 2, 1), date(2025, 3, 1)]
KEY = "test-key-" + "0123456789abcdef" * 3
HOUSEHOLDS, SEED = 150, 3
# the session territory keeps the simulator's hidden-part mechanisms off (contact, dependence:
# synthetic/params.py HiddenPart): the rare cases tests look for in it (a person the linkage
# split over a typo, a newcomer of March…) are the ones found in it when they were written
PARAMS = replace(
    TerritoryParams(),
    hidden=HiddenPart(contact_shape=0, shelter_dependence=0, insertion_dependence=0),
)


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
