"""The public files the pipeline leaves on the small territory, and an attacker's try at them."""

from __future__ import annotations

from pathlib import Path

import openpyxl
import polars as pl
import pytest
from attacker import DURATIONS, narrow_cells, read_published

from synchro_dagster import warehouse
from synchro_dagster.publish import public
from synchro_dagster.settings import Settings

MIN_CELL = 11
COLUMNS = [
    "mois",
    "indicateur",
    "dimension",
    "modalite",
    "valeur",
    "statut",
    "libelle_indicateur",
    "libelle_modalite",
]


@pytest.fixture(scope="module")
def published(ran: Path) -> pl.DataFrame:
    return read_published(Settings(ran).public_dir / "indicators.csv")


@pytest.fixture(scope="module")
def truth(ran: Path) -> pl.DataFrame:
    with warehouse.read_only(Settings(ran).warehouse_path) as conn:
        return public.indicator_cells(conn)


def test_the_run_leaves_the_three_files_in_french(ran: Path, published: pl.DataFrame) -> None:
    folder = Settings(ran).public_dir
    raw = (folder / "indicators.csv").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbfmois;indicateur;dimension;modalite;valeur;statut;")
    assert published.columns == COLUMNS
    parquet = pl.read_parquet(folder / "indicators.parquet")
    assert parquet.columns == COLUMNS and parquet["valeur"].dtype == pl.Int64
    assert parquet.equals(published.with_columns(pl.col("valeur").cast(pl.Int64)))
    assert set(published["statut"]) == {"publie", "secret_primaire", "secret_secondaire"}
    secret = published.filter(pl.col("statut") != "publie")
    assert secret["valeur"].null_count() == secret.height  # no value of a secret cell
    assert published.filter(pl.col("statut") == "publie")["valeur"].null_count() == 0
    total = published.filter(pl.col("dimension").is_null())
    assert set(total["libelle_modalite"]) == {"Ensemble"}
    assert "Ménages sans logement en fin de mois" in set(published["libelle_indicateur"])
    book = openpyxl.load_workbook(folder / "indicators.xlsx", read_only=True)
    assert book.sheetnames == ["Indicateurs", "Règles"]
    header = next(book["Indicateurs"].iter_rows(max_row=1, values_only=True))
    assert header[:5] == ("Mois", "Indicateur", "Modalité", "Valeur", "Statut")
    assert book["Indicateurs"].max_row == published.height + 1
    rules = " ".join(r[0] for r in book["Règles"].iter_rows(values_only=True) if r[0])
    assert f"moins de {MIN_CELL} ménages" in rules


def test_no_small_cell_is_published(published: pl.DataFrame, truth: pl.DataFrame) -> None:
    counts = published.filter(~pl.col("indicateur").is_in(DURATIONS))
    shown = counts.filter(pl.col("statut") == "publie")
    assert shown.filter((pl.col("valeur") > 0) & (pl.col("valeur") < MIN_CELL)).is_empty()
    assert shown.filter(pl.col("valeur") == 0).height > 0  # zeros are published
    # every small non-zero count is secret, whatever else is
    small = truth.with_columns(statut=published["statut"]).filter(
        ~pl.col("indicator").is_in(DURATIONS), pl.col("value") > 0, pl.col("value") < MIN_CELL
    )
    assert small.height > 0 and set(small["statut"]) == {"secret_primaire"}


def test_the_attacker_pins_no_suppressed_cell(published: pl.DataFrame) -> None:
    assert published.filter(pl.col("statut") == "secret_primaire").height > 0
    assert narrow_cells(published, MIN_CELL) == {}


def test_the_attacker_breaks_primary_suppression_alone(
    published: pl.DataFrame, truth: pl.DataFrame
) -> None:
    """The same table with its complements shown: some primary cells are recomputed."""
    shown = published.with_columns(
        valeur=pl.when(pl.col("statut") == "secret_secondaire")
        .then(truth["value"].round(0).cast(pl.Int64))
        .otherwise(pl.col("valeur")),
        statut=pl.col("statut").replace("secret_secondaire", "publie"),
    )
    broken = narrow_cells(shown, MIN_CELL)
    assert broken
    pinned = [k for k, (lo, hi) in broken.items() if lo == hi]
    assert pinned  # recomputed exactly


def test_the_asset_reports_counts_of_cells_only(ran: Path, published: pl.DataFrame) -> None:
    import dagster as dg

    with dg.DagsterInstance.from_config(str(ran / "dagster_home")) as instance:
        event = instance.get_latest_materialization_event(
            dg.AssetKey(["publish", "public_indicators"])
        )
    metadata = {k: v.value for k, v in event.asset_materialization.metadata.items()}
    counts = published.group_by("statut").len()
    assert {f"cells_{s}": n for s, n in counts.iter_rows()} == {
        k: v for k, v in metadata.items() if k.startswith("cells_")
    }
    assert metadata["min_cell"] == MIN_CELL and metadata["cells"] == published.height
    assert set(metadata) == {
        "path",
        "min_cell",
        "cells",
        "estimation_rows",  # rows of estimations.csv: a count of rows, no figure
        *(f"cells_{s}" for s in counts["statut"]),
    }
    estimations = pl.read_parquet(ran / "published" / "public" / "estimations.parquet")
    assert metadata["estimation_rows"] == estimations.height


def test_a_failed_write_leaves_the_previous_files(
    published: pl.DataFrame, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "public"
    public.write_public(published, folder, MIN_CELL)
    before = {p.name: p.read_bytes() for p in folder.iterdir()}

    def broken(*args) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(public, "_write_xlsx", broken)
    with pytest.raises(OSError):
        public.write_public(published.head(3), folder, MIN_CELL)
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before  # no half-written file
