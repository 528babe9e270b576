"""A warehouse staged before a token column was added is linked, re-keyed and rectified as it
is: the column is added to its staging tables, empty for the records staged without it. Read
without writing (the model trained, the months' staging checks), a missing column reads as null."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import polars as pl
from pipelinekit import KEY, MONTHS, copy

from synchro_dagster import warehouse
from synchro_dagster.cli import main
from synchro_dagster.identity.persons import link_month
from synchro_dagster.ingest.checks import staging_checks
from synchro_dagster.privacy import rights
from synchro_dagster.privacy.keys import rotate
from synchro_dagster.settings import Settings
from synchro_dagster.sources import all_sources

ADDED = ("tok_last_typo2", "tok_first_typo2")  # the forms two letters short, added since


def staged_before(ran: Path, tmp_path: Path) -> Path:
    """A copy of the small territory whose staging tables lack the columns `ADDED`."""
    data = copy(ran, tmp_path)
    with warehouse.connect(Settings(data_dir=data).warehouse_path) as conn:
        for table in warehouse.existing_tables(conn, "staging"):
            for column in ADDED:
                conn.execute(f"ALTER TABLE {table} DROP COLUMN {column}")
    return data


def filled(conn: duckdb.DuckDBPyConnection, table: str) -> int:
    """Values of the columns `ADDED` held in `table` (a missing column fails)."""
    return conn.execute(f"SELECT count({ADDED[0]}) + count({ADDED[1]}) FROM {table}").fetchone()[0]


def test_staging_tables_from_before_a_token_column_gain_it_and_the_month_links(ran, tmp_path):
    with warehouse.connect(Settings(data_dir=staged_before(ran, tmp_path)).warehouse_path) as conn:
        tables = warehouse.existing_tables(conn, "staging")
        result = link_month(conn, MONTHS[2])
        staged = sum(
            conn.execute(f"SELECT count(*) FROM {t} WHERE month = ?", [MONTHS[2]]).fetchone()[0]
            for t in tables
        )
        assert result.links.height == staged > 0
        assert result.links["person_id"].null_count() == 0
        for table in tables:
            assert filled(conn, table) == 0  # nothing made up for the records staged before


def test_a_warehouse_staged_before_a_token_column_is_re_keyed(ran, tmp_path):
    """Before, the rotation failed on the missing column (a binder error, nothing re-keyed)."""
    with warehouse.connect(Settings(data_dir=staged_before(ran, tmp_path)).warehouse_path) as conn:
        (before,) = conn.execute("SELECT min(tok_last) FROM staging.siao_urgence").fetchone()
        conn.execute("BEGIN TRANSACTION")
        rotation = rotate(conn, KEY.encode(), b"second-key-0123456789abcdef0123")
        conn.execute("COMMIT")
        assert rotation.rows > 0
        assert conn.execute(
            "SELECT count(*) FROM staging.siao_urgence WHERE tok_last = ?", [before]
        ).fetchone() == (0,)
        for table in warehouse.existing_tables(conn, "staging"):
            assert filled(conn, table) == 0


def test_a_warehouse_staged_before_a_token_column_is_rectified_with_it(ran, tmp_path, monkeypatch):
    """The person's records carry the rectified name's forms two letters short too; before, the
    rectification failed (no such column in the records found). The months are not recomputed
    here (tests/privacy/test_rights.py does)."""
    data = staged_before(ran, tmp_path)
    monkeypatch.setenv("SYNCHRO_PSEUDONYMISATION_KEY", KEY)
    monkeypatch.setattr(rights, "_recompute", lambda settings, first: [first])
    persons = pl.read_parquet(data / "truth" / "persons.parquet")
    person = persons.filter(pl.col("birth_date").is_not_null()).row(5, named=True)
    identity = [
        "--last-name",
        person["usage_last_name"] or person["birth_last_name"],
        "--first-name",
        person["first_name"],
        "--birth-date",
        str(person["birth_date"]),
    ]
    fix = ["--set", "first_name=Fatoumatou"]
    assert main(["rights", "rectify", "--data-dir", str(data), *identity, *fix]) == 0
    forms = rights.Identity("X", "Fatoumatou").tokens(KEY.encode())["tok_first_typo2"]
    with warehouse.read_only(Settings(data_dir=data).warehouse_path) as conn:
        rectified = [
            conn.execute(f"SELECT count(*) FROM {t} WHERE tok_first_typo2 = ?", [forms]).fetchone()
            for t in warehouse.existing_tables(conn, "staging")
        ]
    assert sum(n for (n,) in rectified) > 0


def test_the_model_is_trained_on_a_warehouse_staged_before_a_token_column(ran, tmp_path):
    """`synchro identity train` opens the warehouse read-only: it cannot add the column, it reads
    it as null (before: a binder error, no model). The warehouse is left as it was."""
    data, model = staged_before(ran, tmp_path), tmp_path / "model.json"
    assert main(["identity", "train", "--data-dir", str(data), "--model", str(model)]) == 0
    with warehouse.read_only(Settings(data_dir=data).warehouse_path) as conn:
        staged = sum(
            conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
            for t in warehouse.existing_tables(conn, "staging")
        )
        left = conn.execute(
            "SELECT count(*) FROM information_schema.columns WHERE table_schema = 'staging' AND "
            f"column_name IN {ADDED}"
        ).fetchone()
    assert json.loads(model.read_text())["synchro"]["records"] == staged > 0
    assert left == (0,)


def test_a_month_staged_before_a_token_column_is_schema_valid(ran, tmp_path):
    """Validated again (its rows were staged under an earlier model), the month is valid: the
    column added since reads as null, as linking adds it (before: every source-month failed,
    "column 'tok_last_typo2' not in dataframe")."""
    with warehouse.connect(Settings(data_dir=staged_before(ran, tmp_path)).warehouse_path) as conn:
        conn.execute("UPDATE lineage.files SET model_version = 'a model of an earlier release'")
        sources = [t.partition(".")[2] for t in warehouse.existing_tables(conn, "staging")]
        outcomes = {
            source: next(
                o
                for o in staging_checks(conn, all_sources()[source], MONTHS[0], 1.0)
                if o.name == "schema_valid"
            )
            for source in sources
        }
        assert conn.execute(
            "SELECT count(*) FROM information_schema.columns WHERE table_schema = 'staging' AND "
            f"column_name IN {ADDED}"
        ).fetchone() == (0,)  # a check reads, it does not change the tables
    assert len(outcomes) > 1
    for outcome in outcomes.values():
        assert outcome.passed, outcome.metadata
        assert "validated" not in outcome.metadata  # validated again, not trusted
