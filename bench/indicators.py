"""Monthly indicators against the simulator's observable truth.

Runs the whole pipeline (through Dagster, as `make demo` does) on a generated territory
unless its warehouse already holds indicators, then compares, month by month, our stock,
inflow and outflow totals and the stock of each situation with at least 50 households in the
truth, with the *observable* truth (households that a partner saw, that month or before).
Target: within ±2 %. Prints every figure, its relative error and whether it is within target;
then the mean absolute error per indicator and the share of figures within target; then where
the stock's error comes from, month by month (`stock_error_sources`).

    .venv/bin/python bench/indicators.py [--data-dir DIR] [--households 2000] [--months 12]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from datetime import date
from pathlib import Path

import duckdb
import polars as pl

from synchro_dagster.cli import run_months
from synchro_dagster.settings import Settings
from synchro_dagster.synthetic import generate

TARGET = 0.02
MIN_SITUATION = 50
KEY = "bench-key-" + "0123456789abcdef" * 3


def ours(warehouse: Path) -> pl.DataFrame:
    with duckdb.connect(str(warehouse), read_only=True) as conn:
        return conn.sql(
            "SELECT month, indicator, dimension, value FROM marts.indicators "
            "WHERE indicator IN ('stock_households', 'stock_persons', 'inflow_households', "
            "'outflow_households')"
        ).pl()


def compared(truth: pl.DataFrame, found: pl.DataFrame) -> pl.DataFrame:
    truth = truth.filter(pl.col("scope") == "observable").drop("scope")
    totals = truth.filter(pl.col("dimension").is_null())
    situations = truth.filter(
        (pl.col("indicator") == "stock_households")
        & pl.col("dimension").str.starts_with("situation=")
        & (pl.col("value") >= MIN_SITUATION)
    )
    wanted = pl.concat([totals, situations])
    first = truth["month"].min()
    return (
        wanted.join(found, on=["month", "indicator", "dimension"], how="left", nulls_equal=True)
        .rename({"value": "truth", "value_right": "ours"})
        .with_columns(pl.col("ours").fill_null(0.0))
        # the first month's inflow is the whole initial stock: it says nothing of flows
        .filter(~((pl.col("month") == first) & pl.col("indicator").str.contains("flow")))
        .with_columns(((pl.col("ours") - pl.col("truth")) / pl.col("truth")).alias("error"))
        .with_columns((pl.col("error").abs() <= TARGET).alias("within"))
        .sort("indicator", "dimension", "month", nulls_last=False)
    )


def stock_error_sources(data: Path, warehouse: Path) -> pl.DataFrame:
    """Our stock against the observable truth, household by household, through the provenance
    table: each household of our stock stands for the true household most of its records
    belong to. ours = right + fragments + exited; truth = right + merged + unseen.
    - fragments: a second household of ours for one true household (records linkage left apart)
    - exited: the true household was housed, had died or had left, and no partner said so yet
    - merged: the true household's records sit in a household of ours that stands for another
    - unseen: no household of ours holds its records (no evidence in the window, or an exit)."""
    records = pl.read_parquet(data / "truth" / "records.parquet")
    truth_of = records.select(pl.col("file").alias("file_name"), "row_number", "household_id")
    states = pl.read_parquet(data / "truth" / "states.parquet").select(
        pl.col("household_id").alias("true_id"), "month", "status"
    )
    first_seen = (
        records.filter(pl.col("defect").is_null())
        .group_by("household_id")
        .agg(pl.col("month").min().alias("first_seen"))
        .rename({"household_id": "true_id"})
    )
    with duckdb.connect(str(warehouse), read_only=True) as conn:
        behind = conn.sql(
            "SELECT p.month, p.household_id, f.file_name, p.row_number, p.evidence_date "
            "FROM core.provenance p JOIN lineage.files f ON f.sha256 = p.file_sha256 "
            "JOIN core.household_months h ON h.month = p.month AND h.household_id = p.household_id "
            "WHERE h.status = 'active'"
        ).pl()
    held = behind.join(truth_of.rename({"household_id": "true_id"}), on=["file_name", "row_number"])
    stands_for = (
        held.group_by("month", "household_id", "true_id")
        .agg(pl.len().alias("n"), pl.col("evidence_date").max().alias("last"))
        .sort(
            "month",
            "household_id",
            "n",
            "last",
            "true_id",
            descending=[False, False, True, True, False],
        )
        .group_by("month", "household_id", maintain_order=True)
        .first()
        .join(states, on=["true_id", "month"], how="left")
        .with_columns(pl.col("true_id").is_first_distinct().over("month").alias("first"))
    )
    truly = states.join(first_seen, on="true_id").filter(
        (pl.col("status") == "homeless") & (pl.col("first_seen") <= pl.col("month"))
    )
    homeless = pl.col("status") == "homeless"
    ours = stands_for.group_by("month").agg(
        pl.len().alias("ours"),
        (homeless & pl.col("first")).sum().alias("right"),
        (homeless & ~pl.col("first")).sum().alias("fragments"),
        (~homeless).fill_null(True).sum().alias("exited"),
    )
    absent = truly.join(stands_for.select("month", "true_id"), on=["month", "true_id"], how="anti")
    somewhere = held.select("month", "true_id").unique()
    missed = (
        absent.join(
            somewhere.with_columns(pl.lit(True).alias("held")), on=["month", "true_id"], how="left"
        )
        .group_by("month")
        .agg(
            pl.col("held").fill_null(False).sum().alias("merged"),
            pl.col("held").is_null().sum().alias("unseen"),
        )
    )
    return (
        truly.group_by("month")
        .agg(pl.len().alias("truth"))
        .join(ours, on="month")
        .join(missed, on="month", how="left")
        .fill_null(0)
        .sort("month")
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data-dir", type=Path, default=None, help="a territory already run")
    p.add_argument("--households", type=int, default=2000)
    p.add_argument("--months", type=int, default=12)
    args = p.parse_args()
    data = args.data_dir
    if data is None:
        data = Path(tempfile.mkdtemp(prefix="synchro-bench-"))
    warehouse = Settings(data_dir=data).warehouse_path
    if not (data / "truth" / "indicators.parquet").exists():
        t0 = time.perf_counter()
        generate(data, date(2025, 1, 1), args.months, args.households, 42)
        print(
            f"generated {args.households} households x {args.months} months in "
            f"{time.perf_counter() - t0:.0f} s"
        )
    has_indicators = (
        warehouse.exists()
        and duckdb.connect(str(warehouse), read_only=True)
        .sql("SELECT count(*) FROM information_schema.tables WHERE table_name = 'indicators'")
        .fetchall()[0][0]
    )
    if not has_indicators:
        os.environ.setdefault("SYNCHRO_PSEUDONYMISATION_KEY", KEY)
        os.environ.setdefault("SYNCHRO_FIRST_MONTH", "2025-01")
        months = sorted(date.fromisoformat(f"{m.name}-01") for m in (data / "landing").iterdir())
        t0 = time.perf_counter()
        if run_months(data, months):
            raise SystemExit("the pipeline failed: see above")
        print(f"pipeline: {len(months)} months in {time.perf_counter() - t0:.0f} s")
    table = compared(pl.read_parquet(data / "truth" / "indicators.parquet"), ours(warehouse))
    print(f"\nIndicators against the observable truth ({data}); target ±{TARGET:.0%}\n")
    for (indicator, dimension), rows in table.group_by(
        "indicator", "dimension", maintain_order=True
    ):
        name = indicator + (f" [{dimension}]" if dimension else "")
        print(name)
        for month, truth, found, error, within in rows.select(
            "month", "truth", "ours", "error", "within"
        ).iter_rows():
            mark = "ok" if within else "MISSED"
            print(f"  {month:%Y-%m}  truth {truth:>6,}  ours {found:>8,.0f}  {error:+7.1%}  {mark}")
    print("\nSummary (months compared, mean |error|, max |error|, within ±2 %):")
    summary = table.group_by("indicator", "dimension", maintain_order=True).agg(
        pl.len().alias("months"),
        pl.col("error").abs().mean().alias("mean"),
        pl.col("error").abs().max().alias("max"),
        pl.col("within").sum().alias("within"),
    )
    for indicator, dimension, months, mean, worst, within in summary.iter_rows():
        name = indicator + (f" [{dimension}]" if dimension else "")
        print(f"  {name:<45} {months:>3}  {mean:6.1%}  {worst:6.1%}  {within:>3}/{months}")
    print(
        f"\nAll figures: {int(table['within'].sum())}/{table.height} within ±{TARGET:.0%} "
        f"({table['within'].mean():.0%})"
    )
    print("\nWhere the stock's error comes from (households; see stock_error_sources):")
    print("  month     truth    ours   right  fragm. exited  merged  unseen")
    for row in stock_error_sources(data, warehouse).iter_rows():
        print(f"  {row[0]:%Y-%m}  " + "  ".join(f"{v:>6,}" for v in row[1:]))


if __name__ == "__main__":
    main()
