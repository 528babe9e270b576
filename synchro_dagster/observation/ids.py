"""Identity as known at the end of a month: every past person and household id mapped to today's.

Linkage keeps ids stable but learns: a merge retires an id (an alias row says into which),
and a person seen again may join another household. Observation reads the history
through these maps, so that one household is one household over all its months.
"""

from __future__ import annotations

from datetime import date

import duckdb
import polars as pl

from synchro_dagster.identity.aliases import AliasResolver
from synchro_dagster.identity.horizon import forgotten_links, without_forgotten


def current_ids(
    conn: duckdb.DuckDBPyConnection, month: date, retention_months: int = 24
) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """(persons, households, members) as known at the end of `month`, without the persons
    retention forgets (no partner named them in the `retention_months` months before).

    persons: link_month, person_id -> current_person_id, for every id used up to `month`;
    households: household_id (any id used up to `month`) -> current_household_id: itself when
    it is a person's household now, else where most of its persons are now; members: current
    person_id -> household_id, the household the person was last seen in, under its current id.
    """
    people = AliasResolver(
        conn.execute(
            "SELECT month, alias_id, person_id FROM identity.person_aliases WHERE month <= ?",
            [month],
        ).fetchall()
    )
    homes = AliasResolver(
        conn.execute(
            "SELECT month, alias_id, household_id FROM identity.household_aliases WHERE month <= ?",
            [month],
        ).fetchall()
    )
    forgotten = forgotten_links(conn, month, retention_months)
    used = without_forgotten(
        conn.sql(
            "SELECT DISTINCT month, person_id FROM identity.person_links WHERE month <= ?",
            params=[month],
        ).pl(),
        forgotten,
    )
    persons = used.with_columns(
        people.resolved(used, "person_id", "month").alias("current_person_id")
    ).rename({"month": "link_month"})
    rows = without_forgotten(
        conn.sql(
            "SELECT month, household_id, person_id FROM identity.households WHERE month <= ?",
            params=[month],
        ).pl(),
        forgotten,
    )
    rows = rows.join(
        persons, left_on=["month", "person_id"], right_on=["link_month", "person_id"], how="left"
    ).with_columns(pl.col("current_person_id").fill_null(pl.col("person_id")))
    # the person's household: the one of the latest month it was seen in (smallest id on ties)
    last = (
        rows.sort("month", "household_id", descending=[True, False])
        .group_by("current_person_id", maintain_order=True)
        .first()
    )
    members = last.with_columns(homes.resolved(last, "household_id", "month")).select(
        pl.col("current_person_id").alias("person_id"), "household_id"
    )
    # every household id ever used -> where most of its persons are now; an id that is some
    # person's household now stays itself (part of its persons gone to another household is a
    # split, not a merge: mapped away, it would leave and come back every month)
    current = members["household_id"].unique().implode()
    votes = (
        rows.join(
            members.rename({"household_id": "now"}),
            left_on="current_person_id",
            right_on="person_id",
        )
        .group_by("household_id", "now")
        .agg(pl.col("current_person_id").n_unique().alias("n"))
        .sort("household_id", "n", "now", descending=[False, True, False])
        .group_by("household_id", maintain_order=True)
        .first()
        .select(
            "household_id",
            pl.when(pl.col("household_id").is_in(current))
            .then(pl.col("household_id"))
            .otherwise(pl.col("now"))
            .alias("current_household_id"),
        )
    )
    return persons, votes, members
