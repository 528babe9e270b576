"""Households of the month from its persons and their previous households (`_households`)."""

from __future__ import annotations

from datetime import date

import duckdb
import polars as pl

from synchro_dagster.identity.persons import _households, ensure_tables

MONTH = date(2025, 3, 1)


def households_of(rows: list[tuple[int, str | None]], previous: dict[int, int]) -> list[set]:
    """The month's households, as sets of person ids, from (person, listing token) rows."""
    conn = duckdb.connect()
    ensure_tables(conn)
    records = pl.DataFrame(
        rows, schema={"person_id": pl.Int64, "household_token": pl.String}, orient="row"
    ).with_columns(
        pl.lit(None, pl.String).alias("composition"), pl.lit(None, pl.Int64).alias("household_size")
    )
    frame, _, _ = _households(conn, MONTH, records, previous)
    groups = frame.group_by("household_id").agg(pl.col("person_id"))["person_id"].to_list()
    return sorted((set(g) for g in groups), key=min)


# last month: household 100 was persons 1, 2, 3; household 200 persons 7 and 8
PREVIOUS = {1: 100, 2: 100, 3: 100, 7: 200, 8: 200}


def test_a_person_seen_apart_stays_in_the_household_of_last_month():
    assert households_of([(1, "a"), (2, "a"), (3, None)], PREVIOUS) == [{1, 2, 3}]


def test_one_person_of_another_household_does_not_bring_that_household_in():
    """The partner lists 1 and 2 with person 7: a record of theirs taken for 7, a namesake. The
    listing holds two persons of household 100 and one of 200: 3, seen apart, is still of 100;
    8, seen apart, stays in 200 instead of joining them (before: one household of five, and
    month after month such bridges chained households of dozens)."""
    found = households_of([(1, "a"), (2, "a"), (7, "a"), (3, None), (8, None)], PREVIOUS)
    assert found == [{1, 2, 3, 7}, {8}]


def test_a_listing_that_joins_two_households_equally_brings_both_in():
    """Two persons of each: the listing says the two families live together now."""
    found = households_of([(1, "a"), (2, "a"), (7, "a"), (8, "a"), (3, None)], PREVIOUS)
    assert found == [{1, 2, 3, 7, 8}]


def test_of_two_parts_as_large_the_one_not_declared_alone_keeps_the_households_id():
    """Last month 1 and 2 were household 100; now 1 calls the 115 declaring himself alone and
    2 is met apart, declaring nothing: 2 is still household 100, 1 leaves it under a new id
    (before: the part first in the records' order kept 100, here 1, the one leaving)."""
    conn = duckdb.connect()
    ensure_tables(conn)
    records = pl.DataFrame(
        {"person_id": [1, 2], "composition": ["homme_seul", None]},
        schema={"person_id": pl.Int64, "composition": pl.String},
    ).with_columns(
        pl.lit(None, pl.String).alias("household_token"),
        pl.lit(None, pl.Int64).alias("household_size"),
    )
    for order in (records, records.reverse()):
        frame, _, _ = _households(conn, MONTH, order, {1: 100, 2: 100})
        ids = dict(frame.select("person_id", "household_id").iter_rows())
        assert ids[2] == 100 and ids[1] != 100
