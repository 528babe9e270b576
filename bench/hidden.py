"""The estimate of the households no partner sees, against the simulator's truth.

For several seeds and both simulator profiles: generates a territory, runs the pipeline (through
Dagster, as `make demo` does), then compares month by month the estimated households without a
home (marts.estimates, `estimated_households_total`) with the simulator's `all`-scope stock
(every household truly without a home at the end of the month, seen or not). Prints per
territory and month: the truth, the households seen in the month, the observed stock, the
estimate and its 95 % interval; then bias (mean relative error), mean |error|, the interval's
coverage and mean width, each against its target.

Then the linkage range: the same observation, indicators and estimate on the simulator's true
ids (bench/indicators.py `true_identity`, "perfect linkage"), and whether each month's stock,
inflow and outflow under perfect linkage lies in the range published next to ours (flows from
the second month: the first month's inflow is the whole stock). Also the estimate under
perfect linkage, to separate the estimator's error from the linkage's.

Targets: mean error within ±10 %, 95 % interval covering the truth in ≥ 90 % of months, linkage
range containing the perfect-linkage figure in ≥ 90 % of months.

    .venv/bin/python bench/hidden.py [--seeds 1 2 3] [--profiles default hard]
        [--households 800] [--months 6]
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from datetime import date
from pathlib import Path

import duckdb
import polars as pl
from indicators import (  # bench/indicators.py: the perfect linkage
    KEY,
    recompute_month,
    true_identity,
)

from synchro_dagster.cli import run_months
from synchro_dagster.indicators.estimates import HEADLINE, estimates_month
from synchro_dagster.settings import Settings
from synchro_dagster.synthetic import generate
from synchro_dagster.synthetic.params import PROFILE_NAMES, profile

BIAS_TARGET = 0.10
COVERAGE_TARGET = 0.90
LINKAGE_TARGET = 0.90


def estimates(warehouse: Path) -> pl.DataFrame:
    with duckdb.connect(str(warehouse), read_only=True) as conn:
        return conn.sql(
            "SELECT month, indicator, kind, value, lower, upper FROM marts.estimates"
        ).pl()


def seen_and_stock(warehouse: Path) -> pl.DataFrame:
    with duckdb.connect(str(warehouse), read_only=True) as conn:
        return conn.sql(
            "SELECT month, count(*) FILTER (len(sources) > 0)::INTEGER AS seen, "
            "count(*)::INTEGER AS stock FROM core.household_months WHERE status = 'active' "
            "GROUP BY month"
        ).pl()


def perfect_linkage(data: Path, warehouse: Path) -> pl.DataFrame:
    """marts.estimates had linkage been perfect: observation, indicators and estimates on a copy
    of the warehouse whose identity tables hold the truth."""
    settings = Settings(data_dir=data)
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "perfect.duckdb"
        shutil.copyfile(warehouse, copy)
        with duckdb.connect(str(copy)) as conn:
            for month in true_identity(conn, data):
                recompute_month(conn, month, settings)
                estimates_month(conn, month, settings.inactivity_days)
        return estimates(copy)


def territory(seed: int, name: str, households: int, months: int) -> pl.DataFrame:
    """One territory generated, run and compared: one row per month."""
    data = Path(tempfile.mkdtemp(prefix=f"synchro-hidden-{name}-{seed}-"))
    t0 = time.perf_counter()
    generate(data, date(2025, 1, 1), months, households, seed, profile(name))
    os.environ.setdefault("SYNCHRO_PSEUDONYMISATION_KEY", KEY)
    os.environ.setdefault("SYNCHRO_FIRST_MONTH", "2025-01")
    runs = sorted(date.fromisoformat(f"{m.name}-01") for m in (data / "landing").iterdir())
    if run_months(data, runs):
        raise SystemExit(f"the pipeline failed on {data}: see above")
    warehouse = Settings(data_dir=data).warehouse_path
    ours, perfect = estimates(warehouse), perfect_linkage(data, warehouse)
    print(f"{name} seed {seed}: generated and run in {time.perf_counter() - t0:.0f} s ({data})")
    truth = (
        pl.read_parquet(data / "truth" / "indicators.parquet")
        .filter(
            (pl.col("scope") == "all")
            & (pl.col("indicator") == "stock_households")
            & pl.col("dimension").is_null()
        )
        .select("month", pl.col("value").cast(pl.Float64).alias("truth"))
    )

    def wide(frame: pl.DataFrame, suffix: str) -> pl.DataFrame:
        return frame.select(
            "month",
            pl.col("indicator") + suffix,
            "value",
            "lower",
            "upper",
        ).pivot(on="indicator", index="month", values=["value", "lower", "upper"])

    table = (
        truth.join(seen_and_stock(warehouse), on="month")
        .join(wide(ours, ""), on="month", how="left")
        .join(wide(perfect, "_perfect"), on="month", how="left")
        .with_columns(pl.lit(name).alias("profile"), pl.lit(seed).alias("seed"))
        .sort("month")
    )
    shutil.rmtree(data, ignore_errors=True)
    return table


def summary(rows: pl.DataFrame) -> dict[str, float]:
    total = "estimated_households_total"
    error = (pl.col(f"value_{total}") - pl.col("truth")) / pl.col("truth")
    perfect_error = (pl.col(f"value_{total}_perfect") - pl.col("truth")) / pl.col("truth")
    covered = (pl.col(f"lower_{total}") <= pl.col("truth")) & (
        pl.col("truth") <= pl.col(f"upper_{total}")
    )
    width = (pl.col(f"upper_{total}") - pl.col(f"lower_{total}")) / pl.col("truth")
    first = rows["month"].min()
    out = rows.select(
        error.mean().alias("bias"),
        error.abs().mean().alias("mae"),
        covered.mean().alias("coverage"),
        width.mean().alias("width"),
        perfect_error.mean().alias("bias_perfect"),
        ((pl.col("stock") - pl.col("truth")) / pl.col("truth")).mean().alias("stock_gap"),
    ).row(0, named=True)
    for name in HEADLINE:
        inside = (pl.col(f"lower_{name}") <= pl.col(f"value_{name}_perfect")) & (
            pl.col(f"value_{name}_perfect") <= pl.col(f"upper_{name}")
        )
        later = rows if name == "stock_households" else rows.filter(pl.col("month") > first)
        out[f"linkage_{name}"] = later.select(inside.mean()).item()
        out[f"range_{name}"] = later.select(
            (
                (pl.col(f"upper_{name}") - pl.col(f"lower_{name}")) / 2 / pl.col(f"value_{name}")
            ).mean()
        ).item()
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    p.add_argument("--profiles", choices=PROFILE_NAMES, nargs="+", default=list(PROFILE_NAMES))
    p.add_argument("--households", type=int, default=800)
    p.add_argument("--months", type=int, default=6)
    args = p.parse_args()
    tables = [
        territory(seed, name, args.households, args.months)
        for name in args.profiles
        for seed in args.seeds
    ]
    rows = pl.concat(tables, how="diagonal_relaxed")
    total = "estimated_households_total"
    print(
        "\nMonth by month: truth (all households without a home), seen this month, observed "
        "stock,\nestimate [95 % interval], its error; the estimate under perfect linkage"
    )
    print(
        "  profile  seed  month     truth   seen  stock  estimate [lower, upper]   error  "
        "covered  perfect-linkage estimate"
    )
    for r in rows.iter_rows(named=True):
        est, lo, hi = r[f"value_{total}"], r[f"lower_{total}"], r[f"upper_{total}"]
        err = (est - r["truth"]) / r["truth"]
        print(
            f"  {r['profile']:<8} {r['seed']:>4}  {r['month']:%Y-%m}  {r['truth']:>6,.0f} "
            f"{r['seen']:>6,} {r['stock']:>6,}  {est:>8,.0f} [{lo:>6,.0f}, {hi:>6,.0f}]  "
            f"{err:+6.1%}  {'yes' if lo <= r['truth'] <= hi else 'NO':<7}  "
            f"{r[f'value_{total}_perfect']:>8,.0f}"
        )
    print(
        "\nSummary per profile (targets: mean error within ±10 %, coverage ≥ 90 %, linkage "
        "range coverage ≥ 90 %)"
    )
    print(
        "  profile   months   bias  mean|err|  coverage  width   bias(perfect)  stock vs truth"
        "   linkage coverage stock/inflow/outflow (mean half-range)"
    )
    groups = [(n, rows.filter(pl.col("profile") == n)) for n in args.profiles] + [("all", rows)]
    for name, part in groups:
        s = summary(part)
        ok = (
            "ok" if abs(s["bias"]) <= BIAS_TARGET else "MISSED",
            "ok" if s["coverage"] >= COVERAGE_TARGET else "MISSED",
        )
        linkage = " / ".join(f"{s[f'linkage_{h}']:.0%} (±{s[f'range_{h}']:.1%})" for h in HEADLINE)
        linked = all(s[f"linkage_{h}"] >= LINKAGE_TARGET for h in HEADLINE)
        print(
            f"  {name:<8} {part.height:>6}  {s['bias']:+6.1%} {ok[0]:<6} {s['mae']:5.1%}  "
            f"{s['coverage']:6.0%} {ok[1]:<6} {s['width']:5.1%}  {s['bias_perfect']:+9.1%}"
            f"      {s['stock_gap']:+9.1%}       {linkage} {'ok' if linked else 'MISSED'}"
        )


if __name__ == "__main__":
    main()
