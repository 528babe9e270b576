"""Staged records built by hand for identity tests: tokens as ingestion makes them."""

from __future__ import annotations

from datetime import date

import duckdb
import polars as pl

from synchro_dagster.identity.persons import link_month, write_month
from synchro_dagster.identity.tokens import identity_inputs, tokenise

KEY = b"stable-ids-test-key-0123456789abcdef"
JAN, FEB, MAR = date(2025, 1, 1), date(2025, 2, 1), date(2025, 3, 1)


def identities(rows: list[tuple], source: str = "test") -> pl.DataFrame:
    """(last, first, birth_date, household_ref) -> the canonical identity columns."""
    return identity_inputs(
        [
            {
                "last_name": r[0],
                "first_name": r[1],
                "birth_date": r[2],
                "household_ref": r[3],
                "source": source,
            }
            for r in rows
        ]
    )


def stage(
    conn: duckdb.DuckDBPyConnection, month: date, rows: list[tuple], source: str = "test"
) -> None:
    """rows: (row_number, last, first, birth_date, sex, household_ref[, composition]) into
    staging.<source> (a source of the registry brings its declarations: `lists_person_once`)."""
    raw = identities([(r[1], r[2], r[3], r[5]) for r in rows], source)
    staged = pl.concat(
        [
            tokenise(raw, KEY),
            pl.DataFrame(
                {
                    "source": [source] * len(rows),
                    "month": [month] * len(rows),
                    "file_sha256": [f"sha-{month:%m}"] * len(rows),
                    "row_number": [r[0] for r in rows],
                    "sex": [r[4] for r in rows],
                    "age_band": [None] * len(rows),
                    "composition": pl.Series(
                        [r[6] if len(r) > 6 else None for r in rows], dtype=pl.String
                    ),
                    "household_size": pl.Series([None] * len(rows), dtype=pl.Int64),
                }
            ),
        ],
        how="horizontal",
    )
    conn.register("_s", staged)
    conn.execute("CREATE SCHEMA IF NOT EXISTS staging")
    conn.execute(f"CREATE TABLE IF NOT EXISTS staging.{source} AS SELECT * FROM _s LIMIT 0")
    conn.execute(f"DELETE FROM staging.{source} WHERE month = ?", [month])
    conn.execute(f"INSERT INTO staging.{source} BY NAME SELECT * FROM _s")
    conn.unregister("_s")


def run(conn: duckdb.DuckDBPyConnection, month: date) -> pl.DataFrame:
    result = link_month(conn, month)
    write_month(conn, result)
    return conn.sql(
        "SELECT l.record_key, l.person_id, h.household_id FROM "
        "identity.person_links l JOIN identity.households h USING (month, person_id)"
        " WHERE month = ? ORDER BY record_key",
        params=[month],
    ).pl()


def person_of(links: pl.DataFrame, row: int) -> int:
    return links.filter(pl.col("record_key").str.ends_with(f":{row}"))["person_id"][0]
