"""Who the retention rule forgets: persons no partner has named for `retention_months`.

A person's last contact is the latest month a partner's delivery named them (any source, any
of the ids merges gave them). Each month M is computed on the persons named in the
`retention_months` months before it or in M itself, exactly what the retention run leaves in
the warehouse when M is computed; so deleting the others (`synchro retention`) never changes
a figure of a month computed afterwards, whenever the deletion runs.
"""

from __future__ import annotations

from datetime import date

import duckdb
import polars as pl

from synchro_dagster.identity.aliases import AliasResolver


def months_before(month: date, n: int) -> date:
    """The first day of the month `n` months before `month`."""
    index = month.year * 12 + month.month - 1 - n
    return date(index // 12, index % 12 + 1, 1)


def forgotten_links(
    conn: duckdb.DuckDBPyConnection,
    month: date,
    retention_months: int,
    until: date | None = None,
) -> pl.DataFrame:
    """The links (month, record_key, person_id, current_person_id) up to `until` (default:
    `month`) of every person, as merges have made them by then, whose last link is before
    `months_before(month, retention_months)`: what the computation of `month` ignores and the
    retention run deletes (with every link: `until` = date.max)."""
    until = until or month
    links = conn.sql(
        "SELECT month, record_key, person_id FROM identity.person_links WHERE month <= ?",
        params=[until],
    ).pl()
    people = AliasResolver(
        conn.execute(
            "SELECT month, alias_id, person_id FROM identity.person_aliases WHERE month <= ?",
            [until],
        ).fetchall()
    )
    current = links.with_columns(people.resolved(links, "person_id", "month").alias("_current"))
    return current.filter(
        pl.col("month").max().over("_current") < months_before(month, retention_months)
    ).rename({"_current": "current_person_id"})


def without_forgotten(
    frame: pl.DataFrame, forgotten: pl.DataFrame, month_column: str = "month"
) -> pl.DataFrame:
    """`frame`'s rows whose (month, person_id) is not a forgotten link."""
    pairs = forgotten.select(pl.col("month").alias(month_column), "person_id").unique()
    return frame.join(pairs, on=[month_column, "person_id"], how="anti")
