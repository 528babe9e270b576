"""True monthly indicators of the simulated territory, as DOMAIN §4 defines them.

Two scopes: `all` counts every household truly without a home at the end of a
month; `observable` counts only those that at least one partner saw (in a
usable row) that month or before, which is the most an observation can find.
For both, stock(M) = stock(M-1) + inflow(M) - outflow(M) by construction:
inflow is "in the stock now, not last month", outflow the reverse.
"""

from __future__ import annotations

from datetime import date

import polars as pl

SCHEMA = {
    "month": pl.Date,
    "scope": pl.String,
    "indicator": pl.String,
    "dimension": pl.String,
    "value": pl.Int64,
}


def indicators(
    states: pl.DataFrame, records: pl.DataFrame, initial_ids: list[int], start: date
) -> pl.DataFrame:
    """states: household_id, month, situation, status, composition, persons, housing_kind.
    records: month, household_id, defect (truth of every delivered row)."""
    first_seen = (
        records.filter(pl.col("defect").is_null())
        .group_by("household_id")
        .agg(pl.col("month").min().alias("first_seen"))
    )
    st = states.join(first_seen, on="household_id", how="left").sort("household_id", "month")
    st = st.with_columns(
        pl.col("status").shift(1).over("household_id").alias("prev_status"),
        pl.col("first_seen").le(pl.col("month")).fill_null(False).alias("seen"),
    ).with_columns(
        # a household's first row has no previous month: it existed before only if initial
        pl.when(
            pl.col("prev_status").is_null()
            & pl.col("month").eq(start)
            & pl.col("household_id").is_in(pl.Series(initial_ids, dtype=pl.Int64).implode())
        )
        .then(pl.lit("homeless"))
        .otherwise(pl.col("prev_status"))
        .alias("prev_status"),
        pl.col("first_seen").lt(pl.col("month")).fill_null(False).alias("seen_before"),
    )
    out = []
    for scope in ("all", "observable"):
        in_now = pl.col("status").eq("homeless")
        in_prev = pl.col("prev_status").eq("homeless").fill_null(False)
        if scope == "observable":
            in_now = in_now & pl.col("seen")
            in_prev = in_prev & pl.col("seen_before")
        s = st.with_columns(in_now.alias("in_now"), in_prev.alias("in_prev"))
        inflow_type = (
            pl.when(pl.col("prev_status").eq("housed"))
            .then(pl.lit("returned_from_housing"))
            .when(pl.lit(scope == "observable") & ~pl.col("seen_before"))
            .then(pl.lit("newly_identified"))
            .when(pl.col("prev_status").is_null())
            .then(pl.lit("newly_identified"))
            .otherwise(pl.lit("returned_other"))
        )
        outflow_type = (
            pl.when(pl.col("status").eq("housed"))
            .then(pl.lit("to_housing:") + pl.col("housing_kind").fill_null("unknown"))
            .when(pl.col("status").eq("deceased"))
            .then(pl.lit("deceased"))
            .when(pl.col("status").eq("left"))
            .then(pl.lit("left_territory"))
            .otherwise(pl.lit("to_other"))
        )
        stock = s.filter("in_now")
        inflow = s.filter(pl.col("in_now") & ~pl.col("in_prev")).with_columns(
            inflow_type.alias("dim")
        )
        outflow = s.filter(~pl.col("in_now") & pl.col("in_prev")).with_columns(
            outflow_type.alias("dim")
        )
        parts = [
            _count(stock, "stock_households", None),
            _count(stock, "stock_persons", None, "persons"),
            _count(
                stock.with_columns(pl.col("situation").alias("dim")),
                "stock_households",
                "situation",
            ),
            _count(
                stock.with_columns(pl.col("composition").alias("dim")),
                "stock_households",
                "composition",
            ),
            _count(inflow, "inflow_households", None),
            _count(inflow, "inflow_households", "type"),
            _count(outflow, "outflow_households", None),
            _count(outflow, "outflow_households", "type"),
        ]
        months = st.select(pl.col("month").unique())
        for part in parts:
            out.append(part.with_columns(pl.lit(scope).alias("scope")))
        # a total with no household this month is a zero, not a missing row
        for name in (
            "stock_households",
            "stock_persons",
            "inflow_households",
            "outflow_households",
        ):
            out.append(
                months.with_columns(
                    pl.lit(scope).alias("scope"),
                    pl.lit(name).alias("indicator"),
                    pl.lit(None, pl.String).alias("dimension"),
                    pl.lit(0, pl.Int64).alias("value"),
                )
            )
    df = pl.concat([p.select(list(SCHEMA)).cast(SCHEMA) for p in out])
    return (
        df.group_by("month", "scope", "indicator", "dimension")
        .agg(pl.col("value").sum())
        .sort("month", "scope", "indicator", "dimension", nulls_last=False)
    )


def _count(
    df: pl.DataFrame, indicator: str, dimension: str | None, weight: str | None = None
) -> pl.DataFrame:
    value = pl.col(weight).sum() if weight else pl.len()
    if dimension is None:
        return (
            df.group_by("month")
            .agg(value.cast(pl.Int64).alias("value"))
            .with_columns(
                pl.lit(indicator).alias("indicator"), pl.lit(None, pl.String).alias("dimension")
            )
        )
    return (
        df.group_by("month", "dim")
        .agg(value.cast(pl.Int64).alias("value"))
        .with_columns(
            pl.lit(indicator).alias("indicator"),
            (pl.lit(f"{dimension}=") + pl.col("dim")).alias("dimension"),
        )
        .drop("dim")
    )
