"""Every code a published output shows has a French label; an unknown code is an error."""

from __future__ import annotations

from pathlib import Path

import pytest

from synchro_dagster import warehouse
from synchro_dagster.indicators.definitions import INDICATORS
from synchro_dagster.publish import labels
from synchro_dagster.settings import Settings
from synchro_dagster.sources import all_sources


def test_every_dimension_of_the_run_has_a_label(ran: Path) -> None:
    with warehouse.read_only(Settings(ran).warehouse_path) as conn:
        rows = conn.execute("SELECT DISTINCT indicator, dimension FROM marts.indicators").fetchall()
    families = set()
    for indicator, dimension in rows:
        assert labels.indicator_label(indicator)
        assert labels.indicator_unit(indicator)
        family, _ = labels.split_dimension(dimension)
        families.add(family)
        assert labels.dimension_label(dimension)
    assert {"situation", "ethos", "composition", "type", "within", "need", "answer", "source"} <= (
        families
    )


def test_every_known_code_has_a_label() -> None:
    tables = labels.code_tables()
    assert tables.columns == ["family", "code", "libelle"]
    assert tables.filter(tables["libelle"].str.len_chars() == 0).is_empty()
    assert tables.select("family", "code").is_duplicated().sum() == 0
    codes = {(f, c) for f, c, _ in tables.iter_rows()}
    assert {("indicator", i.name) for i in INDICATORS} <= codes
    assert {("source", s) for s in all_sources()} <= codes
    # the demo's outflow types and the ETHOS category apart for asylum
    assert ("type", "to_housing:housing_first") in codes
    assert ("ethos", "3 (asile)") in codes
    assert labels.modality_label("source", "sne") == "Demande de logement social (SNE)"
    assert labels.dimension_label(None) == labels.TOTAL_LABEL


@pytest.mark.parametrize(
    ("call", "args"),
    [
        (labels.indicator_label, ("stock_of_dreams",)),
        (labels.modality_label, ("situation", "LUNE")),
        (labels.modality_label, ("colour", "red")),
        (labels.dimension_label, ("situation",)),
        (labels.dimension_label, ("type=to_housing:castle",)),
    ],
)
def test_unknown_code_is_an_error_naming_it(call, args) -> None:
    with pytest.raises(labels.UnknownCodeError, match="labels.py|family=code"):
        call(*args)
