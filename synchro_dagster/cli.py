"""The `synchro` command: generate a simulated territory, run the monthly job, run the demo."""

from __future__ import annotations

import argparse
import os
import re
import shutil
import sys
import time
from datetime import date
from pathlib import Path

from synchro_dagster.synthetic.params import PROFILE_NAMES

MONTH = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")
TEMPLATE = Path(__file__).resolve().parent.parent / "dagster_home" / "dagster.yaml"


def _month(text: str) -> date:
    match = MONTH.match(text)
    if not match:
        raise argparse.ArgumentTypeError(f"'{text}' is not a month: write it YYYY-MM, e.g. 2025-01")
    return date(int(match[1]), int(match[2]), 1)


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is not allowed: it must be 1 or more")
    return value


def _month_range(text: str) -> tuple[date, date]:
    first, colon, last = text.partition(":")
    start = _month(first)
    end = _month(last) if last else (date.max if colon else start)
    if end < start:
        raise argparse.ArgumentTypeError(f"'{text}': the range ends before it starts")
    return start, end


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="synchro", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)

    g = sub.add_parser("generate", help="write a simulated territory (deliveries + truth)")
    g.add_argument("--out", type=Path, required=True, help="directory to write into")
    g.add_argument("--start", type=_month, default=_month("2025-01"), help="first month, YYYY-MM")
    g.add_argument("--months", type=_positive, default=12, help="number of months")
    g.add_argument(
        "--households", type=_positive, default=2000, help="households without a home at the start"
    )
    g.add_argument("--seed", type=int, default=42, help="random seed (same seed, same territory)")
    g.add_argument(
        "--profile",
        choices=PROFILE_NAMES,
        default="default",
        help="simulator profile: 'hard' has concentrated names and more damaged records",
    )

    r = sub.add_parser("run", help="run the monthly job over DIR/landing, through Dagster")
    r.add_argument("--data-dir", type=Path, default=Path("data"))
    r.add_argument(
        "--months",
        type=_month_range,
        default=None,
        help="YYYY-MM, YYYY-MM:YYYY-MM, or YYYY-MM: for that month and every later one "
        "(default: every month found in landing)",
    )

    d = sub.add_parser("demo", help="generate the default territory if needed, run every month")
    d.add_argument("--data-dir", type=Path, default=Path("data"))

    i = sub.add_parser("identity", help="identity resolution tools")
    isub = i.add_subparsers(dest="identity_command", required=True)
    t = isub.add_parser("train", help="re-estimate the linkage model on DIR's staged records")
    t.add_argument("--data-dir", type=Path, default=Path("data"))
    t.add_argument(
        "--model",
        type=Path,
        default=None,
        help="where to save the model (default: the package's model.json)",
    )
    r2 = isub.add_parser(
        "reset",
        help="forget every person and household id (corrections kept);"
        " the next `synchro run` links all months from scratch",
    )
    r2.add_argument("--data-dir", type=Path, default=Path("data"))

    doc = sub.add_parser("docs", help="write docs/indicators.md from the indicator definitions")
    doc.add_argument("--out", type=Path, default=Path("docs") / "indicators.md")

    h = sub.add_parser("prepare-home", help="create the Dagster instance folder for DIR")
    h.add_argument("--data-dir", type=Path, default=Path("data"))
    return p


def prepare_dagster_home(data_dir: Path) -> Path:
    """DIR/dagster_home with the committed dagster.yaml; DAGSTER_HOME points at it."""
    home = data_dir.resolve() / "dagster_home"
    home.mkdir(parents=True, exist_ok=True)
    if not (home / "dagster.yaml").exists():
        shutil.copyfile(TEMPLATE, home / "dagster.yaml")
    os.environ["DAGSTER_HOME"] = str(home)
    return home


def landing_months(data_dir: Path) -> list[date]:
    landing = data_dir / "landing"
    if not landing.is_dir():
        return []
    return sorted(_month(p.name) for p in landing.iterdir() if p.is_dir() and MONTH.match(p.name))


QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}  # the UI has the details


def run_months(data_dir: Path, months: list[date]) -> int:
    """Runs the monthly job for each month in order; stops at the first failure (0 if all ok)."""
    from synchro_dagster.settings import MissingKeyError, Settings, pseudonymisation_key

    settings = Settings.from_env(data_dir)
    try:
        pseudonymisation_key(settings)
    except MissingKeyError as exc:
        print(exc, file=sys.stderr)
        return 1
    if not months:
        print(f"No month to run: {settings.landing_dir} holds no YYYY-MM folder.", file=sys.stderr)
        return 1
    if months[0].strftime("%Y-%m") < settings.first_month:
        print(
            f"{months[0]:%Y-%m} is before the first partition {settings.first_month}: set "
            "SYNCHRO_FIRST_MONTH to an earlier month.",
            file=sys.stderr,
        )
        return 1
    prepare_dagster_home(data_dir)
    os.environ["SYNCHRO_DATA_DIR"] = str(settings.data_dir)

    import dagster as dg

    from synchro_dagster.defs import build_definitions

    defs = build_definitions(settings)
    job = defs.resolve_job_def("monthly_job")
    instance = dg.DagsterInstance.get()
    for i, month in enumerate(months, 1):
        t0 = time.perf_counter()
        key = month.strftime("%Y-%m")
        print(f"[{i}/{len(months)}] {key} ...", end=" ", flush=True)
        result = job.execute_in_process(
            partition_key=key,
            instance=instance,
            raise_on_error=False,
            tags={"synchro/origin": "cli"},
            run_config=QUIET,
        )
        seconds = time.perf_counter() - t0
        if not result.success:
            failed = [e.step_key for e in result.all_events if e.is_step_failure]
            print(f"FAILED ({seconds:.1f} s)")
            for event in result.all_events:
                if event.is_step_failure and event.step_failure_data.error:
                    print(
                        f"  {event.step_key}: {event.step_failure_data.error.message.strip()}",
                        file=sys.stderr,
                    )
            print(
                f"Month {key} failed in {', '.join(failed)}; later months were not run "
                f"(their flows depend on it). See the run {result.run_id} in the UI.",
                file=sys.stderr,
            )
            return 1
        print(f"ok ({seconds:.1f} s)")
    result = defs.resolve_job_def("publish_job").execute_in_process(
        instance=instance, raise_on_error=False, tags={"synchro/origin": "cli"}, run_config=QUIET
    )
    if not result.success:
        print(f"The analyst snapshot was not refreshed: see the run {result.run_id} in the UI.")
        return 1
    print(f"Analyst snapshot refreshed: {settings.snapshot_path}")
    return 0


HEADLINES = (
    ("stock_households", None, "Households without a home at the end of the month"),
    ("stock_persons", None, "  persons in them"),
    ("inflow_households", None, "Households that came in"),
    ("outflow_households", None, "Households that got out"),
    ("outflow_households", "type=to_housing:%", "  of which to housing"),
    ("median_months_since_first_seen", None, "Median months since first seen (stock)"),
    ("households_with_open_request", "need=insertion", "Households with an insertion request"),
    ("urgence_requests_not_fulfilled", None, "115 requests not fulfilled"),
    ("priority_not_housed", None, "Priority households not yet housed"),
)


def headline_figures(snapshot: Path) -> list[str]:
    """The last month's headline figures, read from the analysts' snapshot."""
    import duckdb

    with duckdb.connect(str(snapshot), read_only=True) as conn:
        (month,) = conn.execute("SELECT max(month) FROM marts.indicators").fetchall()[0]
        lines = [f"Headline figures for {month:%Y-%m}:"]
        for indicator, dimension, label in HEADLINES:
            (value,) = conn.execute(
                "SELECT sum(value) FROM marts.indicators WHERE month = ? AND indicator = ? AND "
                "coalesce(dimension, '') LIKE ?",
                [month, indicator, dimension or ""],
            ).fetchall()[0]
            shown = (
                "-" if value is None else f"{value:,.0f}" if value == int(value) else f"{value:.1f}"
            )
            lines.append(f"  {label:<55} {shown:>8}")
        rows = conn.execute(
            "SELECT split_part(dimension, '=', 2), value FROM marts.indicators WHERE month = ? "
            "AND indicator = 'stock_households' AND dimension LIKE 'situation=%' "
            "ORDER BY value DESC",
            [month],
        ).fetchall()
        lines.append("  by situation: " + ", ".join(f"{s} {v:,.0f}" for s, v in rows))
    return lines


def warehouse_summary(path: Path) -> list[str]:
    import duckdb

    if not path.exists():
        return ["  (no warehouse yet)"]
    with duckdb.connect(str(path), read_only=True) as conn:
        tables = conn.execute(
            "SELECT table_schema, table_name FROM information_schema.tables "
            "WHERE table_schema NOT IN ('information_schema', 'pg_catalog', 'main') "
            "ORDER BY table_schema, table_name"
        ).fetchall()
        lines = []
        for schema, name in tables:
            n = conn.execute(f'SELECT count(*) FROM "{schema}"."{name}"').fetchall()[0][0]
            lines.append(f"  {schema + '.' + name:<36} {n:>10,} rows")
    return lines


def demo(data_dir: Path) -> int:
    from synchro_dagster.settings import Settings, create_demo_key
    from synchro_dagster.synthetic import generate

    settings = Settings.from_env(data_dir)
    if landing_months(data_dir):
        print(
            f"Reusing the territory already in {settings.landing_dir} "
            "(delete data/ to generate a new one)."
        )
    else:
        print("Generating the default simulated territory (synthetic people only)...")
        print(generate(data_dir, date(2025, 1, 1), 12, 2000, 42).summary())
    if "SYNCHRO_PSEUDONYMISATION_KEY" not in os.environ and create_demo_key(settings.key_file):
        print(
            f"Created a throw-away demo pseudonymisation key at {settings.key_file} (mode 0600).\n"
            "  Real deployments set SYNCHRO_PSEUDONYMISATION_KEY instead; see README."
        )
    months = landing_months(data_dir)
    print(f"Running the monthly job for {len(months)} month(s) through Dagster...")
    t0 = time.perf_counter()
    code = run_months(data_dir, months)
    if code:
        return code
    print(
        f"\nDone in {time.perf_counter() - t0:.0f} s: {len(months)} months "
        f"({months[0]:%Y-%m} to {months[-1]:%Y-%m})."
    )
    print(f"Warehouse: {settings.warehouse_path}")
    print("\n".join(warehouse_summary(settings.warehouse_path)))
    print()
    print("\n".join(headline_figures(settings.snapshot_path)))
    print(f"\nAnalysts: duckdb -readonly {settings.snapshot_path}   (README, 'For analysts')")
    print("Open the Dagster UI on the same instance with:  make ui   (http://127.0.0.1:3000)")
    return 0


def reset_identity(data_dir: Path) -> int:
    import duckdb

    from synchro_dagster.identity.persons import IDENTITY_TABLES
    from synchro_dagster.settings import Settings

    warehouse = Settings(data_dir=data_dir).warehouse_path
    with duckdb.connect(str(warehouse)) as conn:
        for table in IDENTITY_TABLES:
            conn.execute(f"DROP TABLE IF EXISTS identity.{table}")
    print(
        "Person and household ids forgotten (corrections kept). Re-run every month in order:\n"
        f"  synchro run --data-dir {data_dir}"
    )
    return 0


def train_identity_model(data_dir: Path, model: Path | None = None) -> int:
    """Trains the linkage model on every staged record (tokens only) and saves it."""
    from datetime import date as _date

    import duckdb

    from synchro_dagster.identity import linkage
    from synchro_dagster.identity.persons import staged_records
    from synchro_dagster.settings import Settings

    warehouse = Settings(data_dir=data_dir).warehouse_path
    if not warehouse.exists():
        print(f"No warehouse at {warehouse}: run the monthly job first.", file=sys.stderr)
        return 1
    with duckdb.connect(str(warehouse), read_only=True) as conn:
        records = staged_records(conn, until=_date.max)
    if records.height == 0:
        print("No staged record to train on: run the monthly job first.", file=sys.stderr)
        return 1
    description = (
        f"{records.height} staged records of {records['source'].n_unique()} sources, "
        f"{records['month'].min():%Y-%m} to {records['month'].max():%Y-%m}, "
        f"from {data_dir}/warehouse"
    )
    path = model or linkage.MODEL_PATH
    linkage.train(records, description, path)
    print(f"Model trained on {description}; saved to {path}")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.command == "generate":
        from synchro_dagster.synthetic import generate, profile

        result = generate(
            args.out, args.start, args.months, args.households, args.seed, profile(args.profile)
        )
        print(result.summary())
        return 0
    if args.command == "run":
        months = landing_months(args.data_dir)
        if args.months:
            start, end = args.months
            months = [m for m in months if start <= m <= end]
        return run_months(args.data_dir, months)
    if args.command == "demo":
        return demo(args.data_dir)
    if args.command == "identity" and args.identity_command == "train":
        return train_identity_model(args.data_dir, args.model)
    if args.command == "identity":
        return reset_identity(args.data_dir)
    if args.command == "docs":
        from synchro_dagster.indicators.definitions import markdown

        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(markdown(), encoding="utf-8")
        print(f"Wrote {args.out}")
        return 0
    if args.command == "prepare-home":
        print(prepare_dagster_home(args.data_dir))
        return 0
    return 2


if __name__ == "__main__":
    sys.exit(main())
