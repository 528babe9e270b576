"""What rights requests ask of every later run, as data: `privacy.subjects`.

A request applied to one person (a rectification, an opposition, a limitation) is stored as
the keyed tokens of that person's records — their record tokens, and the (name, birth date)
token pairs they carry — never an identity in clear. Ingestion applies the requests to each
delivery (`Requests.apply`: a rectification replaces tokens, an opposition drops the row and
counts it `rows_opposed` in `lineage.files`); `warehouse.staged_history` leaves limited
records out of identity and observation (the same rule, in SQL) until `lift` deletes the
limitation. A record carrying the person's name with another birth date is a namesake's and
is never touched; one carrying their name and no birth date is dropped by an objection and
frozen by a limitation (nothing tells it apart: the request errs on the person's side), and
left as it is by a rectification.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

import duckdb
import polars as pl

from synchro_dagster import warehouse

TABLE = "privacy.subjects"
# a record without a birth date carrying the person's name: nothing tells it from a namesake's;
# an objection or a limitation errs on the person's side, a rectification never guesses
DATELESS_TOO = ("oppose", "limit")

# the token columns each identity field gives (tokens.TOKEN_COLUMNS), replaced by a rectification
FIELD_COLUMNS = {
    "last_name": (
        "tok_last",
        "tok_last_core",
        "tok_phon_last",
        "tok_name",
        "tok_name_sorted",
        "tok_last_typo",
        "tok_last_typo2",
    ),
    "first_name": (
        "tok_first",
        "tok_first_first",
        "tok_phon_first",
        "tok_name",
        "tok_name_sorted",
        "tok_first_typo",
        "tok_first_typo2",
    ),
    "birth_date": ("tok_dob", "tok_dob_swapped", "tok_birth_year", "tok_birth_md", "tok_dob_near"),
}
SUBJECT_SCHEMA = {
    "request_id": pl.Int64,
    "action": pl.String,
    "record_token": pl.String,
    "tok_name": pl.String,
    "tok_dob": pl.String,
    "replacement": pl.String,
}


@dataclass(frozen=True)
class Requests:
    """The requests in force: one row per request and token of its person."""

    subjects: pl.DataFrame

    @classmethod
    def empty(cls) -> Requests:
        return cls(pl.DataFrame(schema=SUBJECT_SCHEMA))

    @classmethod
    def load(cls, conn: duckdb.DuckDBPyConnection) -> Requests:
        if TABLE not in warehouse.existing_tables(conn, "privacy"):
            return cls.empty()
        columns = ", ".join(SUBJECT_SCHEMA)
        return cls(conn.sql(f"SELECT {columns} FROM {TABLE}").pl().cast(SUBJECT_SCHEMA))

    def adding(self, action: str, records: pl.DataFrame) -> Requests:
        """These requests and one more, not stored (to see what it would reach)."""
        next_id = int(self.subjects["request_id"].max() or 0) + 1
        added = request_rows(next_id, action, records, None)
        return Requests(pl.concat([self.subjects, added]))

    def of(self, action: str) -> list[int]:
        ids = self.subjects.filter(pl.col("action") == action)["request_id"].unique().sort()
        return ids.to_list()

    def covers(self, frame: pl.DataFrame, request_id: int) -> pl.Series:
        """Rows of `frame` (staged columns) that the request's person's tokens match: one of
        their (name, birth date) pairs, one of their record tokens with one of their birth dates
        (a partner's number is often the household's: a 115 request, a SI-SIAO demand, shared
        by the person's family, whose birth dates differ), and for an opposition or a
        limitation one of their names on a record giving no birth date."""
        own = self.subjects.filter(pl.col("request_id") == request_id)
        records = own["record_token"].drop_nulls().implode()
        dated = own.filter(pl.col("tok_dob").is_not_null())
        pairs = dated.select(_pair()).to_series().implode()
        dates = dated["tok_dob"].implode()
        match = (pl.col("record_token").is_in(records) & pl.col("tok_dob").is_in(dates)) | (
            _pair().is_in(pairs)
        )
        if own["action"][0] in DATELESS_TOO:
            names = own["tok_name"].drop_nulls().implode()
            match = match | (pl.col("tok_dob").is_null() & pl.col("tok_name").is_in(names))
        return frame.select(match.fill_null(False)).to_series()

    def covered(self, frame: pl.DataFrame, action: str) -> pl.Series:
        mask = pl.Series([False] * frame.height)
        for request_id in self.of(action):
            mask = mask | self.covers(frame, request_id)
        return mask

    def apply(self, frame: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
        """A delivery's rows with rectifications applied, split into (kept, opposed)."""
        for request_id in self.of("rectify"):
            frame = replaced(frame, self.covers(frame, request_id), self.replacement(request_id))
        opposed = self.covered(frame, "oppose")
        return frame.filter(~opposed), frame.filter(opposed)

    def replacement(self, request_id: int) -> dict[str, str]:
        own = self.subjects.filter(pl.col("request_id") == request_id)
        return json.loads(own["replacement"][0])


def replaced(frame: pl.DataFrame, rows: pl.Series, replacement: dict[str, str]) -> pl.DataFrame:
    """`frame` with the replacement's columns set on `rows` (a boolean mask)."""
    return frame.with_columns(
        pl.when(pl.lit(rows)).then(pl.lit(value)).otherwise(pl.col(column)).alias(column)
        for column, value in replacement.items()
    )


def _pair() -> pl.Expr:
    return pl.concat_str(pl.col("tok_name"), pl.col("tok_dob"), separator=" ")


def request_rows(
    request_id: int, action: str, records: pl.DataFrame, replacement: dict[str, str] | None
) -> pl.DataFrame:
    """A request for the person whose staged `records` are given (record_token, tok_name,
    tok_dob), as rows of `privacy.subjects`: their record tokens, their (name, birth date)
    pairs, and for a rectification the columns to replace."""
    return (
        pl.concat(
            [
                records.select("record_token").drop_nulls().unique(),
                records.select("tok_name", "tok_dob").drop_nulls("tok_name").unique(),
            ],
            how="diagonal",
        )
        .with_columns(
            pl.lit(request_id, pl.Int64).alias("request_id"),
            pl.lit(action).alias("action"),
            pl.lit(json.dumps(replacement, sort_keys=True) if replacement else None).alias(
                "replacement"
            ),
        )
        .select(list(SUBJECT_SCHEMA))
        .cast(SUBJECT_SCHEMA)
    )


def add_request(
    conn: duckdb.DuckDBPyConnection,
    action: str,
    records: pl.DataFrame,
    replacement: dict[str, str] | None = None,
) -> int:
    """Stores a request (`request_rows`); returns its id."""
    warehouse.ensure(conn, TABLE)
    (request_id,) = conn.execute(
        f"SELECT coalesce(max(request_id), 0) + 1 FROM {TABLE}"
    ).fetchall()[0]
    rows = request_rows(request_id, action, records, replacement).with_columns(
        pl.lit(datetime.now()).alias("created_at")
    )
    conn.register("_request", rows)
    try:
        conn.execute(f"INSERT INTO {TABLE} BY NAME SELECT * FROM _request")
    finally:
        conn.unregister("_request")
    return request_id


def drop_request(conn: duckdb.DuckDBPyConnection, request_id: int) -> None:
    """Ends a request (a limitation lifted)."""
    conn.execute(f"DELETE FROM {TABLE} WHERE request_id = ?", [request_id])
