"""One small simulated territory, generated once per session and shared by the ingestion tests."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from pathlib import Path

import polars as pl
import pytest

from synchro_dagster.synthetic import TerritoryParams, generate

START = date(2024, 7, 1)
MONTHS = 8  # to 2025-02: a DALO recourse needs an SNE demand older than six months
PARAMS = replace(
    TerritoryParams(),
    dalo_recourse_rate=0.3,  # enough recourses for the DALO source to deliver rows
    defect_rate=0.02,  # every kind of broken row, in most sources, within a small territory
)


@pytest.fixture(scope="session")
def territory(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("territory")
    generate(out, START, MONTHS, households=250, seed=11, params=PARAMS)
    return out


@pytest.fixture(scope="session")
def truth_records(territory: Path) -> pl.DataFrame:
    """Which person every delivered row is about, and which rows were broken on purpose."""
    return pl.read_parquet(territory / "truth" / "records.parquet")


@pytest.fixture(scope="session")
def truth_persons(territory: Path) -> pl.DataFrame:
    return pl.read_parquet(territory / "truth" / "persons.parquet")
