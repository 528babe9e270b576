"""A warehouse staged before a token column was added is linked, re-keyed and rectified as it
is: the column is added to its staging tables, empty for the records staged without it."""

from __future__ import annotations

from pathlib import Path

import duckdb
import polars as pl
from pipelinekit import KEY, MONTHS, copy

from synchro_dagster import warehouse
from synchro_dagster.cli import main
from synchro_dagster.identity.persons import link_month
from synchro_dagster.privacy import rights
from synchro_dagster.privacy.keys import rotate
from synchro_dagster.settings import Settings

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
