"""The `synchro` command: generate a simulated territory, run the monthly job, run the demo."""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
from datetime import date
from importlib.resources import files
from pathlib import Path

from synchro_dagster.synthetic.params import PROFILE_NAMES

MONTH = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")
TEMPLATE = files("synchro_dagster") / "templates" / "dagster.yaml"  # shipped in the package


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


def _date(text: str) -> date:
    try:
        if re.match(r"^\d{4}-\d{2}-\d{2}$", text):
            return date.fromisoformat(text)
    except ValueError:
        pass
    raise argparse.ArgumentTypeError(
        f"'{text}' is not a date: write it YYYY-MM-DD, e.g. 1985-03-02"
    )


RIGHTS = {
    "access": "art. 15: export everything held on a person (FILE.xlsx and FILE.json)",
    "rectify": "art. 16: correct a name or birth date, at every later run too",
    "oppose": "art. 21: remove a person from everything, and their future records",
    "limit": "art. 18: keep a person's records but leave them out of every computation",
    "lift": "end a limitation",
}


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
        help="simulator profile: 'hard' has concentrated names and more damaged records; "
        "'hard-refs' is hard with street teams and day centres noting their own reference",
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
    d.add_argument("--months", type=_positive, default=12, help="months to generate")
    d.add_argument(
        "--households", type=_positive, default=2000, help="households without a home at the start"
    )

    i = sub.add_parser("identity", help="identity resolution tools")
    isub = i.add_subparsers(dest="identity_command", required=True)
    t = isub.add_parser("train", help="re-estimate the linkage model on DIR's staged records")
    t.add_argument("--data-dir", type=Path, default=Path("data"))
    t.add_argument(
        "--model",
        type=Path,
        default=None,
        help="where to save the model (default: DIR/identity/model.json; the pipeline keeps "
        "the shipped model until a reviewed one replaces synchro_dagster/identity/model.json)",
    )
    r2 = isub.add_parser(
        "reset",
        help="forget every person and household id (corrections kept);"
        " the next `synchro run` links all months from scratch",
    )
    r2.add_argument("--data-dir", type=Path, default=Path("data"))

    doc = sub.add_parser(
        "docs",
        help="write docs/indicators.md (indicator definitions), docs/registre.md and "
        "docs/notice.md (GDPR register entry and notice, from the sources and settings)",
    )
    doc.add_argument("--dir", type=Path, default=Path("docs"), help="where to write them")
    doc.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help="take retention and the rights contact from DIR's settings (default: the defaults)",
    )

    ret = sub.add_parser(
        "retention",
        help="delete persons no partner named in SYNCHRO_RETENTION_MONTHS months, and landing "
        "files SYNCHRO_LANDING_RETENTION_DAYS after ingestion (the monthly job does it too)",
    )
    ret.add_argument("--data-dir", type=Path, default=Path("data"))
    ret.add_argument(
        "--today",
        type=_date,
        default=None,
        help="the date to judge by, YYYY-MM-DD (default: today)",
    )

    k = sub.add_parser("key", help="pseudonymisation key tools")
    ksub = k.add_subparsers(dest="key_command", required=True)
    kr = ksub.add_parser(
        "rotate",
        help="add a new key to the key file's chain and re-key every token of DIR's warehouse "
        "(no value in clear needed); an old key alone is then refused",
    )
    kr.add_argument("--data-dir", type=Path, default=Path("data"))

    rights = sub.add_parser("rights", help="data subjects' rights: access, rectify, oppose, limit")
    rsub = rights.add_subparsers(dest="rights_command", required=True)
    for name, what in RIGHTS.items():
        c = rsub.add_parser(name, help=what)
        c.add_argument("--data-dir", type=Path, default=Path("data"))
        c.add_argument("--last-name", required=True, help="as the person gives it")
        c.add_argument("--first-name", required=True)
        c.add_argument("--birth-date", type=_date, default=None, help="YYYY-MM-DD")
        c.add_argument(
            "--request-id", default=None, help="the request's number in the SIAO's register"
        )
        c.add_argument(
            "--person", type=_positive, default=None, help="N: the N-th person of the namesakes"
        )
        if name == "access":
            c.add_argument(
                "--out", type=Path, required=True, help="FILE: writes FILE.xlsx and FILE.json"
            )
        if name == "rectify":
            c.add_argument(
                "--set",
                required=True,
                metavar="FIELD=VALUE",
                help="birth_date=YYYY-MM-DD, last_name=NOM or first_name=Prénom",
            )

    a = sub.add_parser("audit", help="print the audit trail (operations on personal data)")
    a.add_argument("--data-dir", type=Path, default=Path("data"))

    x = sub.add_parser("export", help="write a query on the analysts' snapshot to an .xlsx")
    x.add_argument("--data-dir", type=Path, default=Path("data"))
    x.add_argument("--out", type=Path, required=True, help="the workbook to write (.xlsx)")
    x.add_argument(
        "--sql",
        default=None,
        help="a query on DIR/published/analytics.duckdb (default: every indicator, every month, "
        "with its French labels)",
    )

    ter = sub.add_parser(
        "territories", help="several territories on one Dagster instance (PostgreSQL, Celery)"
    )
    tsub = ter.add_subparsers(dest="territories_command", required=True)
    tc = tsub.add_parser(
        "config",
        help="write the shared instance's folder: dagster.yaml, celery.yaml, workspace.yaml and "
        "one NAME.env per territory; print every machine's command lines",
    )
    tc.add_argument("--out", type=Path, required=True, help="where to write the instance folder")
    tc.add_argument(
        "--home",
        type=Path,
        default=None,
        help="where the folder lies on the machines, their DAGSTER_HOME (default: --out)",
    )
    tc.add_argument(
        "--territory",
        nargs=3,
        action="append",
        required=True,
        metavar=("NAME", "DATA_DIR", "HOST"),
        help="a territory, its data directory and the machine running its code server and "
        "workers (repeat for each; code servers on ports 4101, 4102, ...)",
    )
    td = tsub.add_parser(
        "demo",
        help="two simulated territories on a local PostgreSQL and Redis, each month's runs "
        "executed by two local Celery workers (needs Debian's postgresql and redis-server)",
    )
    td.add_argument("--dir", type=Path, required=True, help="a new folder to work in")
    td.add_argument("--households", type=_positive, default=100)
    td.add_argument(
        "--keep", action="store_true", help="leave everything running, the UI open, until Ctrl-C"
    )

    h = sub.add_parser("prepare-home", help="create the Dagster instance folder for DIR")
    h.add_argument("--data-dir", type=Path, default=Path("data"))
    return p


def prepare_dagster_home(data_dir: Path) -> Path:
    """DIR/dagster_home with the package's dagster.yaml; DAGSTER_HOME points at it."""
    from synchro_dagster.settings import private_dir

    home = private_dir(data_dir.resolve() / "dagster_home")
    if not (home / "dagster.yaml").exists():
        (home / "dagster.yaml").write_text(TEMPLATE.read_text(encoding="utf-8"), encoding="utf-8")
    os.environ["DAGSTER_HOME"] = str(home)
    return home


def landing_months(data_dir: Path) -> list[date]:
    from synchro_dagster.settings import landing_months as folders

    return [_month(name) for name in folders(data_dir / "landing")]


QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}  # the UI has the details
TAGS = {"synchro/origin": "cli"}


def run_months(data_dir: Path, months: list[date]) -> int:
    """Runs the monthly job for each month in order; stops at the first failure (0 if all ok).
    Holds the data directory for all its months: another run waits for it to end (runs.py)."""
    from synchro_dagster.settings import (
        SETTINGS_FILE,
        MissingKeyError,
        Settings,
        pseudonymisation_key,
    )

    settings = Settings.from_env(data_dir)
    try:
        pseudonymisation_key(settings)
    except MissingKeyError as exc:
        print(exc, file=sys.stderr)
        return 1
    if not months:
        print(f"No month to run: {settings.landing_dir} holds no YYYY-MM folder.", file=sys.stderr)
        return 1
    first, last = months[0].strftime("%Y-%m"), months[-1].strftime("%Y-%m")
    if first < settings.first_month or (settings.last_month and last > settings.last_month):
        print(
            f"{first} to {last} is outside the partitions {settings.first_month} to "
            f"{settings.last_month or 'the last complete month'}: set SYNCHRO_FIRST_MONTH / "
            f"SYNCHRO_LAST_MONTH (or {settings.data_dir / SETTINGS_FILE}).",
            file=sys.stderr,
        )
        return 1
    if settings.territory is None:
        prepare_dagster_home(data_dir)
    elif not os.environ.get("DAGSTER_HOME"):
        print(
            f"Territory {settings.territory} belongs to a shared Dagster instance: set "
            "DAGSTER_HOME to the folder holding its dagster.yaml (README, 'Several territories').",
            file=sys.stderr,
        )
        return 1

    import dagster as dg

    from synchro_dagster.defs.runs import RunsBusy, exclusive, own_location, reap_dead_runs

    instance = dg.DagsterInstance.get()
    what = f"synchro run --months {first}:{last}"
    try:
        with exclusive(settings, what, lambda line: print(line, file=sys.stderr, flush=True)):
            for line in reap_dead_runs(instance, own_location(settings)):
                print(line, file=sys.stderr)
            return _run_in_order(settings, instance, months)
    except RunsBusy as busy:
        print(busy, file=sys.stderr)
        return 1


def _run_in_order(settings, instance, months: list[date]) -> int:
    """The months' runs, then the publication; the data directory is held by the caller."""
    from synchro_dagster import warehouse
    from synchro_dagster.defs import build_definitions
    from synchro_dagster.defs.launch import failures, launch
    from synchro_dagster.ingest.store import WrongKeyError, check_key
    from synchro_dagster.months import MonthsOutOfOrder, require_in_order
    from synchro_dagster.settings import pseudonymisation_key

    try:
        if settings.warehouse_path.exists():
            with warehouse.read_only(settings.warehouse_path) as conn:
                check_key(conn, pseudonymisation_key(settings), record=False)
                require_in_order(conn, months[0], settings)
    except (WrongKeyError, MonthsOutOfOrder) as exc:
        print(exc, file=sys.stderr)
        return 1
    defs = build_definitions(settings)
    for i, month in enumerate(months, 1):
        t0 = time.perf_counter()
        key = month.strftime("%Y-%m")
        print(f"[{i}/{len(months)}] {key} ...", end=" ", flush=True)
        run = launch(instance, defs, "monthly_job", key, TAGS, QUIET)
        seconds = time.perf_counter() - t0
        # each partner's feedback, a failed month's first: a refused file is the partner's to fix
        feedback = launch(instance, defs, "feedback_job", key, TAGS, QUIET)
        if not feedback.is_success:
            print(f"(partner feedback for {key} not written: see the run {feedback.run_id})")
        if not run.is_success:
            failed = failures(instance, run.run_id)
            print(f"FAILED ({seconds:.1f} s)")
            for step, message in failed:
                print(f"  {step}: {message}", file=sys.stderr)
            print(
                f"Month {key} failed in {', '.join(s for s, _ in failed)}; later months were not "
                f"run (their flows depend on it). See the run {run.run_id} in the UI.",
                file=sys.stderr,
            )
            if feedback.is_success:
                print(f"Partner feedback for {key}: {settings.feedback_dir}", file=sys.stderr)
            return 1
        print(f"ok ({seconds:.1f} s)")
    run = launch(instance, defs, "publish_job", None, TAGS, QUIET)
    if not run.is_success:
        print(
            "The public indicators, the monthly reports and the analyst snapshot were not all "
            f"refreshed: see the run {run.run_id} in the UI."
        )
        return 1
    print(f"Public indicators written: {settings.public_dir}")
    print(f"Monthly reports written: {settings.reports_dir}")
    print(f"Analyst snapshot refreshed: {settings.snapshot_path}")
    print(f"Partner feedback, one workbook per partner and month: {settings.feedback_dir}")
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
    from synchro_dagster import warehouse

    with warehouse.read_only(snapshot) as conn:
        (month,) = conn.execute("SELECT max(month) FROM marts.indicators").fetchall()[0]
        lines = [f"Headline figures for {month:%Y-%m}:"]
        for indicator, dimension, label in HEADLINES:
            (value,) = conn.execute(
                "SELECT sum(coalesce(count, months)) FROM marts.indicators WHERE month = ? "
                "AND indicator = ? AND "
                "coalesce(dimension, '') LIKE ?",
                [month, indicator, dimension or ""],
            ).fetchall()[0]
            shown = (
                "-" if value is None else f"{value:,.0f}" if value == int(value) else f"{value:.1f}"
            )
            lines.append(f"  {label:<55} {shown:>8}")
        rows = conn.execute(
            "SELECT split_part(dimension, '=', 2), count FROM marts.indicators WHERE month = ? "
            "AND indicator = 'stock_households' AND dimension LIKE 'situation=%' "
            "ORDER BY count DESC",
            [month],
        ).fetchall()
        lines.append("  by situation: " + ", ".join(f"{s} {v:,.0f}" for s, v in rows))
    return lines


def warehouse_summary(path: Path) -> list[str]:
    from synchro_dagster import warehouse

    if not path.exists():
        return ["  (no warehouse yet)"]
    with warehouse.read_only(path) as conn:
        lines = []
        for name in warehouse.existing_tables(conn):
            n = conn.execute(f"SELECT count(*) FROM {name}").fetchall()[0][0]
            lines.append(f"  {name:<36} {n:>10,} rows")
    return lines


def demo(data_dir: Path, months: int = 12, households: int = 2000) -> int:
    from synchro_dagster.settings import SETTINGS_FILE, Settings, create_demo_key, save_months
    from synchro_dagster.synthetic import generate

    if landing_months(data_dir):
        print(
            f"Reusing the territory already in {data_dir / 'landing'} "
            "(delete it to generate a new one)."
        )
    else:
        print("Generating the default simulated territory (synthetic people only)...")
        print(generate(data_dir, date(2025, 1, 1), months, households, 42).summary())
    found = landing_months(data_dir)
    if not (data_dir / SETTINGS_FILE).exists():
        # a simulated territory lies in the past: its partitions are its months, not the clock's
        save_months(data_dir, f"{found[0]:%Y-%m}", f"{found[-1]:%Y-%m}")
    settings = Settings.from_env(data_dir)
    if "SYNCHRO_PSEUDONYMISATION_KEY" not in os.environ and create_demo_key(settings.key_file):
        print(
            f"Created a throw-away demo pseudonymisation key at {settings.key_file} (mode 0600).\n"
            "  Real deployments set SYNCHRO_PSEUDONYMISATION_KEY instead; see README."
        )
    print(f"Running the monthly job for {len(found)} month(s) through Dagster...")
    t0 = time.perf_counter()
    code = run_months(data_dir, found)
    if code:
        return code
    print(
        f"\nDone in {time.perf_counter() - t0:.0f} s: {len(found)} months "
        f"({found[0]:%Y-%m} to {found[-1]:%Y-%m})."
    )
    print(f"Warehouse: {settings.warehouse_path}")
    print("\n".join(warehouse_summary(settings.warehouse_path)))
    print()
    print("\n".join(headline_figures(settings.snapshot_path)))
    report = settings.reports_dir / f"synchro_{found[-1]:%Y-%m}"
    print(
        f"\nMonthly report for {found[-1]:%Y-%m}: {report}.html (.xlsx, .pdf)   "
        "(README, 'Rapport mensuel')"
    )
    print(f"Analysts: duckdb -readonly {settings.snapshot_path}   (README, 'For analysts')")
    print("Open the Dagster UI on the same instance with:  make ui   (http://127.0.0.1:3000)")
    return 0


def reset_identity(data_dir: Path) -> int:
    from synchro_dagster import months, warehouse
    from synchro_dagster.identity.persons import IDENTITY_TABLES
    from synchro_dagster.settings import Settings

    with warehouse.connect(Settings.from_env(data_dir).warehouse_path) as conn:
        for table in IDENTITY_TABLES:
            conn.execute(f"DROP TABLE IF EXISTS identity.{table}")
        months.forget_all(conn)  # no month is complete any more
    print(
        "Person and household ids forgotten (corrections kept). Re-run every month in order:\n"
        f"  synchro run --data-dir {data_dir}"
    )
    return 0


def train_identity_model(data_dir: Path, model: Path | None = None) -> int:
    """Trains the linkage model on every staged record (tokens only) and saves it."""
    from synchro_dagster import warehouse
    from synchro_dagster.identity import linkage
    from synchro_dagster.identity.persons import staged_records
    from synchro_dagster.settings import Settings

    settings = Settings.from_env(data_dir)
    if not settings.warehouse_path.exists():
        print(
            f"No warehouse at {settings.warehouse_path}: run the monthly job first.",
            file=sys.stderr,
        )
        return 1
    with warehouse.read_only(settings.warehouse_path) as conn:
        records = staged_records(conn, until=date.max)
    if records.height == 0:
        print("No staged record to train on: run the monthly job first.", file=sys.stderr)
        return 1
    description = (
        f"{records.height} staged records of {records['source'].n_unique()} sources, "
        f"{records['month'].min():%Y-%m} to {records['month'].max():%Y-%m}, "
        f"from {data_dir}/warehouse"
    )
    path = model or settings.data_dir / "identity" / "model.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    linkage.train(records, description, path)
    print(
        f"Model trained on {description}; saved to {path}.\n"
        f"  The pipeline keeps using {linkage.MODEL_PATH} until this one, reviewed (bench/"
        "linkage.py), is committed in its place."
    )
    return 0


def rights_request(args: argparse.Namespace) -> int:
    """One rights command; the identity typed stays in memory (never printed or logged)."""
    from synchro_dagster.ingest.store import WrongKeyError
    from synchro_dagster.privacy import rights
    from synchro_dagster.settings import MissingKeyError, Settings

    request = rights.Request(
        Settings.from_env(args.data_dir),
        rights.Identity(args.last_name, args.first_name, args.birth_date),
        args.request_id,
        args.person,
    )
    try:
        if args.rights_command == "access":
            return rights.access(request, args.out)
        if args.rights_command == "rectify":
            return rights.rectify(request, args.set)
        return getattr(rights, args.rights_command)(request)
    except rights.RightsError as problem:
        print(problem, file=sys.stderr)
        return problem.code
    except (MissingKeyError, WrongKeyError) as problem:
        print(problem, file=sys.stderr)
        return 1


def retention(data_dir: Path, today: date | None) -> int:
    """One retention run; what it deleted, in numbers."""
    from synchro_dagster.privacy.retention import run_retention
    from synchro_dagster.settings import Settings

    settings = Settings.from_env(data_dir)
    if not settings.warehouse_path.exists():
        print(f"No warehouse at {settings.warehouse_path}: nothing to delete.", file=sys.stderr)
        return 1
    print("\n".join(run_retention(settings, today or date.today()).lines()))
    return 0


def generated_docs(data_dir: Path | None = None) -> dict[str, str]:
    """File name -> text of every generated document (defaults unless `data_dir` is given)."""
    from synchro_dagster.indicators.definitions import markdown
    from synchro_dagster.privacy.notices import notice, registre
    from synchro_dagster.settings import Settings

    settings = Settings.from_env(data_dir) if data_dir else Settings(data_dir=Path("data"))
    return {
        "indicators.md": markdown(),
        "registre.md": registre(settings),
        "notice.md": notice(settings),
    }


def write_docs(folder: Path, data_dir: Path | None) -> int:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in generated_docs(data_dir).items():
        (folder / name).write_text(text, encoding="utf-8")
        print(f"Wrote {folder / name}")
    return 0


def rotate_key(data_dir: Path) -> int:
    from synchro_dagster.ingest.store import WrongKeyError
    from synchro_dagster.privacy.keys import RotationRefused, rotate_key_file
    from synchro_dagster.settings import MissingKeyError, Settings

    settings = Settings.from_env(data_dir)
    if not settings.warehouse_path.exists():
        print(f"No warehouse at {settings.warehouse_path}: nothing to re-key.", file=sys.stderr)
        return 1
    try:
        rotation = rotate_key_file(settings)
    except (MissingKeyError, WrongKeyError, RotationRefused) as exc:
        print(exc, file=sys.stderr)
        return 1
    print(
        f"Key rotated: {rotation.values:,} token values re-keyed in {rotation.rows:,} rows of "
        f"{rotation.tables} tables; {settings.key_file} now holds a chain of {rotation.keys} "
        "keys (oldest first), all needed. Replace every copy of the old key file with it "
        "(backups included): the old key alone is now refused."
    )
    return 0


def print_audit(data_dir: Path) -> int:
    """The audit trail, oldest event first, as the DPO reads it."""
    import duckdb

    from synchro_dagster import warehouse
    from synchro_dagster.privacy import audit
    from synchro_dagster.settings import Settings

    path = Settings.from_env(data_dir).warehouse_path
    if not path.exists():
        print(f"No warehouse at {path}: nothing was ever recorded.", file=sys.stderr)
        return 1
    try:
        with warehouse.read_only(path) as conn:
            events = audit.events(conn)
    except duckdb.IOException:
        print(f"{path} is being written by a run: try again when it ends.", file=sys.stderr)
        return 1
    print("\n".join(audit.table_lines(events)))
    print(f"{len(events)} événement(s).")
    return 0


def export(data_dir: Path, out: Path, sql: str | None = None) -> int:
    """The snapshot's figures (or any query on it) as an Excel workbook."""
    from synchro_dagster.publish.snapshot import INDICATORS_IN_FRENCH, export_xlsx
    from synchro_dagster.settings import Settings

    snapshot = Settings.from_env(data_dir).snapshot_path
    if not snapshot.exists():
        print(f"No snapshot at {snapshot}: run the monthly job first.", file=sys.stderr)
        return 1
    rows = export_xlsx(snapshot, out, sql or INDICATORS_IN_FRENCH)
    print(f"Wrote {rows:,} rows to {out} (readable by you only).")
    return 0


FIRST_PORT = 4101  # the territories' code servers, in the order given


def territories_config(out: Path, given: list[list[str]], home: Path | None = None) -> int:
    from synchro_dagster.settings import Settings, SettingsError
    from synchro_dagster.territories import Territory, commands, write_config

    territories = []
    for i, (name, data_dir, host) in enumerate(given):
        try:
            Settings(data_dir=Path(data_dir), first_month="2025-01", territory=name)
        except SettingsError as problem:
            print(problem, file=sys.stderr)
            return 1
        territories.append(Territory(name, Path(data_dir).resolve(), host, FIRST_PORT + i))
    if len({t.name for t in territories}) < len(territories):
        print("Each territory needs its own name.", file=sys.stderr)
        return 1
    home = (home or out).resolve()
    for path in write_config(out.resolve(), territories, home):
        print(f"Wrote {path}")
    print("\n".join(commands(home, territories)))
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
        return demo(args.data_dir, args.months, args.households)
    if args.command == "identity" and args.identity_command == "train":
        return train_identity_model(args.data_dir, args.model)
    if args.command == "identity":
        return reset_identity(args.data_dir)
    if args.command == "docs":
        return write_docs(args.dir, args.data_dir)
    if args.command == "rights":
        return rights_request(args)
    if args.command == "key":
        return rotate_key(args.data_dir)
    if args.command == "retention":
        return retention(args.data_dir, args.today)
    if args.command == "audit":
        return print_audit(args.data_dir)
    if args.command == "export":
        return export(args.data_dir, args.out, args.sql)
    if args.command == "territories" and args.territories_command == "config":
        return territories_config(args.out, args.territory, args.home)
    if args.command == "territories":
        from synchro_dagster.territories import demo as territories_demo

        return territories_demo(args.dir, args.households, args.keep)
    if args.command == "prepare-home":
        print(prepare_dagster_home(args.data_dir))
        return 0
    return 2


if __name__ == "__main__":
    sys.exit(main())
