"""Monthly indicators against the simulator's observable truth.

Runs the whole pipeline (through Dagster, as `make demo` does) on a generated territory
unless its warehouse already holds indicators, then compares, month by month, our stock,
inflow and outflow totals and the stock of each situation with at least 50 households in the
truth, with the *observable* truth (households that a partner saw, that month or before).
Target: within ±2 %. Prints every figure, its relative error and whether it is within target;
then the mean absolute error per indicator and the share of figures within target; then where
the stock's error comes from, month by month (`stock_error_sources`).

Then the perfect-linkage run (`perfect_linkage`): the same observation and indicator code on
the simulator's true person and household ids, on a copy of the warehouse. Month by month, the
observable truth, the perfect linkage and ours for the stock (households, persons), inflow and
outflow totals, with the error split in two: ours vs perfect is the linkage's (targets: within
±1 % on the stock of households every month, ≤ 3 % on average on inflow and outflow), perfect
vs truth the rules'; their mean absolute value after the first month; and the flows by type,
ours vs perfect, over the year. Then the same split for the pipeline's revised figures
(`marts.revised_indicators`, each month from its latest vintage: identity as known
SYNCHRO_REVISION_MONTHS months later), as an analyst reads the past once fragments have been
merged. Last, our household events the perfect linkage does not have, by cause
(`excess_events`): a fragment of a true household already in our stock or entering (leaving)
with it, a true household released from or absorbed into one of ours standing for another, or
none of ours holding it.

    .venv/bin/python bench/indicators.py [--data-dir DIR] [--households 2000] [--months 12]
        [--seed 42] [--profile default|hard]
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

from synchro_dagster import warehouse as wh
from synchro_dagster.cli import run_months
from synchro_dagster.identity.persons import RECORD_KEY
from synchro_dagster.indicators.build import indicators_month
from synchro_dagster.observation.build import Window, observe_month
from synchro_dagster.settings import Settings
from synchro_dagster.synthetic import generate
from synchro_dagster.synthetic.params import PROFILE_NAMES, profile

TARGET = 0.02
MIN_SITUATION = 50
KEY = "bench-key-" + "0123456789abcdef" * 3
SPLIT = ("stock_households", "stock_persons", "inflow_households", "outflow_households")
STOCK_LINKAGE_TARGET = 0.01  # |ours - perfect| / perfect on the stock of households, every month
FLOW_LINKAGE_TARGET = 0.03  # the same, on average over the months, on the inflow and the outflow
FLOW_TYPES = {
    "inflow_households": ("newly_identified", "returned_from_housing", "returned_from_inactivity"),
    "outflow_households": (
        "to_housing",
        "to_inactivity",
        "duplicate_merged",
        "deceased",
        "left_territory",
    ),
}


def ours(warehouse: Path) -> pl.DataFrame:
    with duckdb.connect(str(warehouse), read_only=True) as conn:
        return conn.sql(
            "SELECT month, indicator, dimension, value FROM marts.indicators "
            "WHERE indicator IN ('stock_households', 'stock_persons', 'inflow_households', "
            "'outflow_households')"
        ).pl()


def flows_after(first: date) -> pl.Expr:
    """Drops the first month's flows: its inflow is the whole initial stock, it says nothing of
    flows."""
    return ~((pl.col("month") == first) & pl.col("indicator").str.contains("flow"))


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
        .filter(flows_after(first))
        .with_columns(((pl.col("ours") - pl.col("truth")) / pl.col("truth")).alias("error"))
        .with_columns((pl.col("error").abs() <= TARGET).alias("within"))
        .sort("indicator", "dimension", "month", nulls_last=False)
    )


def true_identity(conn: duckdb.DuckDBPyConnection, data: Path) -> list[date]:
    """Replaces the identity tables with the simulator's truth: each staged record, found in the
    truth by its file and row number, links to its true person; each person of a month belongs
    to the true household most of its records that month name; no aliases. Empties `core.*` and
    `marts.indicators`. Returns the staged months."""
    truth = pl.read_parquet(data / "truth" / "records.parquet").select(
        pl.col("file").alias("file_name"), "row_number", "person_id", "household_id"
    )
    union, params = wh.staged_history(
        conn, f"{RECORD_KEY} AS record_key, month, source, file_sha256, row_number", date.max
    )
    staged = conn.sql(union, params=params).pl()
    files = conn.sql("SELECT DISTINCT sha256 AS file_sha256, file_name FROM lineage.files").pl()
    mapped = staged.join(files, on="file_sha256").join(truth, on=["file_name", "row_number"])
    if mapped.height != staged.height or mapped["record_key"].n_unique() != staged.height:
        raise SystemExit(
            f"perfect linkage: {mapped.height:,} of {staged.height:,} staged records found in "
            "the truth by file and row number; every one must be"
        )
    print(f"perfect linkage: all {staged.height:,} staged records mapped to their true person")
    links = mapped.select("month", "record_key", "source", "person_id")
    households = (
        mapped.group_by("month", "person_id", "household_id")
        .len()
        .sort("month", "person_id", "len", "household_id", descending=[False, False, True, False])
        .group_by("month", "person_id", maintain_order=True)
        .first()
        .select("month", "household_id", "person_id")
    )
    conn.execute("BEGIN TRANSACTION")
    for table in ("person_aliases", "household_aliases"):
        conn.execute(f"DELETE FROM identity.{table}")
    for table, frame in (("person_links", links), ("households", households)):
        conn.register("_truth", frame)
        conn.execute(f"DELETE FROM identity.{table}")
        conn.execute(f"INSERT INTO identity.{table} BY NAME SELECT * FROM _truth")
        conn.unregister("_truth")
    for table in ("core.household_months", "core.household_events", "core.provenance"):
        conn.execute(f"DELETE FROM {table}")
    conn.execute("DELETE FROM marts.indicators")
    conn.execute("COMMIT")
    return sorted(staged["month"].unique())


def recompute_month(conn: duckdb.DuckDBPyConnection, month: date, settings: Settings) -> None:
    """The month's observation and indicators, as the Dagster assets compute them."""
    window = Window(
        month, settings.inactivity_days, settings.lookback_months, settings.retention_months
    )
    observe_month(conn, window)
    indicators_month(conn, month)


def perfect_linkage(data: Path, warehouse: Path) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Our indicators had linkage been perfect: on a copy of the warehouse whose identity tables
    hold the truth (`true_identity`), the production observation and indicators, month by
    month, as the Dagster assets run them. Returns the indicators and the household events
    (household_id: the true household)."""
    settings = Settings(data_dir=data)
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "perfect.duckdb"
        shutil.copyfile(warehouse, copy)
        with duckdb.connect(str(copy)) as conn:
            for month in true_identity(conn, data):
                recompute_month(conn, month, settings)
        return ours(copy), household_events(copy)


def household_events(warehouse: Path) -> pl.DataFrame:
    with duckdb.connect(str(warehouse), read_only=True) as conn:
        return conn.sql("SELECT month, household_id, flow, type FROM core.household_events").pl()


def revised(warehouse: Path) -> pl.DataFrame:
    """Each month's figures as revised by the pipeline (`marts.revised_indicators`), from the
    latest vintage that revised it: the revision an analyst reads today."""
    with duckdb.connect(str(warehouse), read_only=True) as conn:
        return conn.sql(
            "SELECT month, indicator, dimension, value FROM marts.revised_indicators "
            "WHERE indicator IN ('stock_households', 'stock_persons', 'inflow_households', "
            "'outflow_households') QUALIFY vintage = max(vintage) OVER (PARTITION BY month)"
        ).pl()


def linkage_split(truth: pl.DataFrame, perfect: pl.DataFrame, found: pl.DataFrame) -> pl.DataFrame:
    """Per month and total of SPLIT: the observable truth, the perfect linkage, ours; the linkage's
    error (ours vs perfect) and the rules' error (perfect vs observable truth)."""

    def totals(frame: pl.DataFrame, name: str) -> pl.DataFrame:
        return frame.filter(
            pl.col("dimension").is_null() & pl.col("indicator").is_in(SPLIT)
        ).select("month", "indicator", pl.col("value").alias(name))

    first = truth["month"].min()
    observable = truth.filter(pl.col("scope") == "observable")
    return (
        totals(observable, "truth")
        .join(totals(perfect, "perfect"), on=["month", "indicator"], how="left")
        .join(totals(found, "ours"), on=["month", "indicator"], how="left")
        .fill_null(0.0)
        .filter(flows_after(first))
        .with_columns(
            ((pl.col("ours") - pl.col("perfect")) / pl.col("perfect")).alias("linkage"),
            ((pl.col("perfect") - pl.col("truth")) / pl.col("truth")).alias("rules"),
        )
        .sort(pl.col("indicator").replace_strict(SPLIT, range(len(SPLIT))), "month")
    )


def flow_types(frame: pl.DataFrame, after: date) -> dict[tuple[str, str], float]:
    """(indicator, type) -> households over the months after `after`; housing kinds summed."""
    rows = frame.filter(
        pl.col("indicator").is_in(list(FLOW_TYPES))
        & pl.col("dimension").str.starts_with("type=")
        & (pl.col("month") > after)
    ).with_columns(pl.col("dimension").str.extract(r"^type=([a-z_]+)"))
    return {
        (i, t): v
        for i, t, v in rows.group_by("indicator", "dimension")
        .agg(pl.col("value").sum())
        .iter_rows()
    }


def print_linkage_split(
    truth: pl.DataFrame, perfect: pl.DataFrame, found: pl.DataFrame, title: str
) -> None:
    split = linkage_split(truth, perfect, found)
    first = truth["month"].min()
    print(f"\n{title}")
    for (indicator,), rows in split.group_by("indicator", maintain_order=True):
        print(
            f"{indicator}\n  month     truth  perfect     ours   ours vs perfect   perfect vs truth"
        )
        for month, t, p, o, link, rule in rows.select(
            "month", "truth", "perfect", "ours", "linkage", "rules"
        ).iter_rows():
            mark = ""
            if indicator == "stock_households":
                mark = "ok" if abs(link) <= STOCK_LINKAGE_TARGET else "MISSED"
            print(
                f"  {month:%Y-%m}  {t:>6,.0f}  {p:>7,.0f}  {o:>7,.0f}   {link:+7.1%} {mark:<6}"
                f"    {rule:+7.1%}"
            )
        later = rows.filter(pl.col("month") > first)
        linkage_mae, rules_mae = later["linkage"].abs().mean(), later["rules"].abs().mean()
        if indicator == "stock_households":
            within = (rows["linkage"].abs() <= STOCK_LINKAGE_TARGET).sum()
            target = f"linkage within ±{STOCK_LINKAGE_TARGET:.0%} in {within}/{rows.height} months"
        elif indicator in FLOW_TYPES:
            mark = "ok" if linkage_mae <= FLOW_LINKAGE_TARGET else "MISSED"
            target = f"target linkage ≤ {FLOW_LINKAGE_TARGET:.0%}: {mark}"
        else:
            target = "no target"
        print(
            f"  mean |error| after {first:%Y-%m}: linkage {linkage_mae:.1%}, rules {rules_mae:.1%}"
            f"   ({target})"
        )
    print(
        f"\nFlows by type after {first:%Y-%m}, households summed: "
        "ours, perfect linkage, ours - perfect"
    )
    mine, theirs = flow_types(found, first), flow_types(perfect, first)
    for indicator, types in FLOW_TYPES.items():
        for kind in types:
            o, p = mine.get((indicator, kind), 0.0), theirs.get((indicator, kind), 0.0)
            print(
                f"  {indicator.split('_')[0]:<8} {kind:<26} {o:>7,.0f}  {p:>7,.0f}  {o - p:>+7,.0f}"
            )


def held_records(data: Path, warehouse: Path) -> pl.DataFrame:
    """The evidence of each active household of ours, month by month (core.provenance), with
    the true household each record belongs to (true_id)."""
    records = pl.read_parquet(data / "truth" / "records.parquet")
    truth_of = records.select(pl.col("file").alias("file_name"), "row_number", "household_id")
    with duckdb.connect(str(warehouse), read_only=True) as conn:
        behind = conn.sql(
            "SELECT p.month, p.household_id, f.file_name, p.row_number, p.evidence_date "
            "FROM core.provenance p JOIN lineage.files f ON f.sha256 = p.file_sha256 "
            "JOIN core.household_months h ON h.month = p.month AND h.household_id = p.household_id "
            "WHERE h.status = 'active'"
        ).pl()
    return behind.join(truth_of.rename({"household_id": "true_id"}), on=["file_name", "row_number"])


def standing_for(held: pl.DataFrame) -> pl.DataFrame:
    """month, household_id -> the true household most of its evidence belongs to (ties: the
    latest evidence, then the smallest id)."""
    return (
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
        .select("month", "household_id", "true_id")
    )


def stock_error_sources(data: Path, held: pl.DataFrame) -> pl.DataFrame:
    """Our stock against the observable truth, household by household, through the provenance
    table: each household of our stock stands for the true household most of its records
    belong to. ours = right + fragments + exited; truth = right + merged + unseen.
    - fragments: a second household of ours for one true household (records linkage left apart)
    - exited: the true household was housed, had died or had left, and no partner said so yet
    - merged: the true household's records sit in a household of ours that stands for another
    - unseen: no household of ours holds its records (no evidence in the window, or an exit).
    `held`: `held_records`."""
    records = pl.read_parquet(data / "truth" / "records.parquet")
    states = pl.read_parquet(data / "truth" / "states.parquet").select(
        pl.col("household_id").alias("true_id"), "month", "status"
    )
    first_seen = (
        records.filter(pl.col("defect").is_null())
        .group_by("household_id")
        .agg(pl.col("month").min().alias("first_seen"))
        .rename({"household_id": "true_id"})
    )
    stands_for = (
        standing_for(held)
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


EXCESS_CAUSES = {
    "inflow": (
        "fragment: the true household was in our stock last month under another id",
        "fragment: another household of ours for the true household entered this month too",
        "released: its records were last month inside a household of ours standing for another",
        "not in our stock last month (perfect linkage had it: a link across months missed)",
    ),
    "outflow": (
        "fragment: the true household goes on in our stock under another id",
        "fragment: another household of ours for the true household left this month too",
        "absorbed: its records are now inside a household of ours standing for another",
        "gone from our stock (perfect linkage keeps it)",
    ),
}


def excess_events(
    held: pl.DataFrame, warehouse: Path, perfect_events: pl.DataFrame
) -> pl.DataFrame:
    """Our household events after the first month that the perfect linkage does not have, by
    cause (`EXCESS_CAUSES`). Each event of ours stands for a true household (`standing_for`: an
    inflow by its evidence that month, an outflow by its evidence the month before); an event
    of ours and one of the perfect linkage of the same month, flow and true household match.
    What is left of ours: where the true household's evidence was, in our stock, the month
    before (an inflow) or that month (an outflow). `held`: `held_records`."""
    stands = standing_for(held)
    first = stands["month"].min()
    found = household_events(warehouse).filter(pl.col("month") > first)
    before = stands.with_columns(pl.col("month").dt.offset_by("1mo"))
    ours_true = pl.concat(
        [
            found.filter(pl.col("flow") == "inflow").join(
                stands, on=["month", "household_id"], how="left"
            ),
            found.filter(pl.col("flow") == "outflow").join(
                before, on=["month", "household_id"], how="left"
            ),
        ]
    )
    key = ["month", "flow", "true_id"]
    rank = pl.int_range(pl.len()).over(key).alias("k")
    twins = pl.len().over(key).alias("twins")  # households of ours for it in this event
    ours_true = ours_true.with_columns(twins)
    perfect = perfect_events.filter(pl.col("month") > first).rename({"household_id": "true_id"})
    extra = ours_true.with_columns(rank).join(
        perfect.with_columns(rank), on=[*key, "k"], how="anti"
    )
    holders = (  # month, true household -> the households of ours holding its evidence
        held.select("month", "true_id", "household_id")
        .unique()
        .join(stands.rename({"true_id": "holder_for"}), on=["month", "household_id"])
        .rename({"household_id": "holder"})
    )
    when = {"inflow": holders.with_columns(pl.col("month").dt.offset_by("1mo")), "outflow": holders}
    parts = []
    for flow, (fragment, twin, inside, elsewhere) in EXCESS_CAUSES.items():
        events = extra.filter(pl.col("flow") == flow).join(
            when[flow], on=["month", "true_id"], how="left"
        )
        own = (pl.col("holder_for") == pl.col("true_id")) & (
            pl.col("holder") != pl.col("household_id")
        )
        parts.append(
            events.group_by("month", "household_id", "type", "true_id", "twins")
            .agg(own.any().alias("own"), (pl.col("holder_for") != pl.col("true_id")).any())
            .select(
                pl.lit(flow).alias("flow"),
                "type",
                pl.when(pl.col("own"))
                .then(pl.lit(fragment))
                .when(pl.col("twins") > 1)
                .then(pl.lit(twin))
                .when(pl.col("holder_for"))
                .then(pl.lit(inside))
                .otherwise(pl.lit(elsewhere))
                .alias("cause"),
            )
        )
    return (
        pl.concat(parts)
        .group_by("flow", "type", "cause")
        .len("households")
        .sort("flow", "type", "households", "cause", descending=[False, False, True, False])
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help="a territory already generated (and maybe run): --profile and --seed do not apply",
    )
    p.add_argument("--households", type=int, default=2000)
    p.add_argument("--months", type=int, default=12)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--profile", choices=PROFILE_NAMES, default="default")
    args = p.parse_args()
    data = args.data_dir
    if data is None:
        data = Path(tempfile.mkdtemp(prefix="synchro-bench-"))
    warehouse = Settings(data_dir=data).warehouse_path
    if not (data / "truth" / "indicators.parquet").exists():
        t0 = time.perf_counter()
        generate(
            data, date(2025, 1, 1), args.months, args.households, args.seed, profile(args.profile)
        )
        print(
            f"generated {args.households} households x {args.months} months "
            f"(profile {args.profile}, seed {args.seed}) in "
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
    true_figures = pl.read_parquet(data / "truth" / "indicators.parquet")
    our_figures = ours(warehouse)
    table = compared(true_figures, our_figures)
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
    held = held_records(data, warehouse)
    for row in stock_error_sources(data, held).iter_rows():
        print(f"  {row[0]:%Y-%m}  " + "  ".join(f"{v:>6,}" for v in row[1:]))
    t0 = time.perf_counter()
    perfect, perfect_events = perfect_linkage(data, warehouse)
    print(f"perfect linkage: observation and indicators in {time.perf_counter() - t0:.0f} s")
    print_linkage_split(
        true_figures,
        perfect,
        our_figures,
        "Linkage apart from the rules. ours vs perfect: the linkage's error (perfect = the same "
        "observation and\nindicators on the simulator's true ids); perfect vs truth: the rules' "
        "error (against the observable truth).",
    )
    print_linkage_split(
        true_figures,
        perfect,
        revised(warehouse),
        "Revised (marts.revised_indicators: each month as its latest vintage revised it, "
        "identity as known\nSYNCHRO_REVISION_MONTHS months later, or at the last month), "
        "against the same perfect linkage.",
    )
    print(
        "\nOur household events after the first month that the perfect linkage does not have, "
        "by cause\n(households summed over the months; see excess_events):"
    )
    for flow, kind, cause, n in excess_events(held, warehouse, perfect_events).iter_rows():
        print(f"  {flow:<8} {kind:<25} {n:>6,}  {cause}")


if __name__ == "__main__":
    main()
