"""The whole pipeline at scale: time and peak memory of every stage, month after month.

For each territory size (`--sizes`, households at the start) a simulated territory of
`--months` months is generated, then every month is run twice from the same state:

  plain   : each stage through the production functions the Dagster assets call (staging:
            `ingest_source_month` per source; identity: `link_month` + `write_month`;
            observation: `observe_month`; indicators: `indicators_month` + `estimates_month`;
            revision: `revise`, the months before computed again; publication: the public
            files, the analysts' snapshot, the reports that changed and the partners'
            feedback), without the asset checks;
  dagster : the same month through `synchro run` (monthly_job, feedback_job, publish_job, as
            in production, checks included) on a copy of the warehouse as it was before the
            month, with its own Dagster home kept from month to month.

Each plain stage runs in its own process (`--stage`), so that its peak resident memory
(`ru_maxrss`, a high-water mark the kernel cannot reset within a process) is the stage's own,
native DuckDB and Polars allocations included, with no sampling that could miss a short peak;
the time is measured inside the process, imports excluded. The Dagster run's peak is the
whole `synchro run` process's (`wait4`), its time is read per run from the instance.

Printed per size and month: the month's staged rows and the history (staged rows up to the
month), the households in the observation window, time and peak RSS per stage, the DuckDB
file size, the plain total against the Dagster runs (overhead, paired on the same month); the
revision against the revision as before its windows were carried one from another (on a copy
of the warehouse after the month: time, and whether it revised the same figures); then,
per stage, the log-log fit of time and peak memory against the month's rows and the history
(`t ~ rows^a * (history/rows)^b`; over sizes and months); then the targets of issue 15 as
"target / measured" lines. Figures only: nothing is asserted.

Progress goes to stderr. With `--work DIR` every territory, warehouse and result is kept
there and a second run resumes where the first stopped (a month interrupted half-way is
started again from the state before it: `before.duckdb`); without it, a temporary directory
is removed at the end.

    .venv/bin/python bench/pipeline.py                                  # 2,000 and 10,000, 3 months
    .venv/bin/python bench/pipeline.py --sizes 2000 --months 3          # about 3 minutes
    .venv/bin/python bench/pipeline.py --sizes 2000,10000,30000,100000 --months 6 \\
        --work /tmp/bench-pipeline                                      # the issue's table
    .venv/bin/python bench/pipeline.py --sizes 300000 --months 3 --dagster last \\
        --work /tmp/bench-pipeline                                      # the Paris-sized month
    .venv/bin/python bench/pipeline.py --sizes 2000 --months 12 --dagster all   # metropole

`--dagster all|last|none`: which months also run through Dagster (default last, so that
`make bench` stays within about half an hour on a shared machine).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

STAGES = ("staging", "identity", "observation", "indicators", "revision", "publication")
REDRAWN = "revision_redrawn"  # the revision as before, paired: not a stage of the pipeline
JOBS = ("monthly_job", "feedback_job", "publish_job")
KEY = "bench-pipeline-key-" + "0123456789abcdef" * 3
START = date(2025, 1, 1)
RUN_ID = "bench-pipeline"
GB = 2**30


def month_key(index: int) -> str:
    """The `index`-th month of the territory (1-based), as YYYY-MM."""
    n = START.year * 12 + START.month - 2 + index
    return f"{n // 12}-{n % 12 + 1:02d}"


def environment(months: int) -> dict[str, str]:
    return {
        **os.environ,
        "SYNCHRO_PSEUDONYMISATION_KEY": KEY,
        "SYNCHRO_FIRST_MONTH": month_key(1),
        "SYNCHRO_LAST_MONTH": month_key(months),
        "PYTHONPATH": os.pathsep.join(
            [str(Path(__file__).resolve().parents[1]), os.environ.get("PYTHONPATH", "")]
        ),
    }


# ---- one stage, in its own process ----------------------------------------------------------


def stage_staging(settings, month: date) -> dict:
    from synchro_dagster import warehouse
    from synchro_dagster.ingest.errors import FileRejected
    from synchro_dagster.ingest.store import check_key, ingest_source_month
    from synchro_dagster.privacy.rules import Requests
    from synchro_dagster.settings import pseudonymisation_key
    from synchro_dagster.sources import all_sources

    key = pseudonymisation_key(settings)
    with warehouse.connect(settings.warehouse_path) as conn:
        check_key(conn, key)
        requests = Requests.load(conn)
    refused = []
    for source in all_sources().values():
        try:
            ingest_source_month(
                settings.warehouse_path,
                settings.landing_dir,
                source,
                month,
                key,
                settings.max_rejection_rate,
                RUN_ID,
                requests,
            )
        except FileRejected:
            refused.append(source.id)
    return {"refused": refused}


def stage_identity(settings, month: date) -> dict:
    from synchro_dagster import months, warehouse
    from synchro_dagster.identity.persons import link_month, write_month

    with warehouse.connect(settings.warehouse_path) as conn:
        write_month(conn, link_month(conn, month, settings.retention_months))
        months.record(conn, month, "identity", RUN_ID)
    return {}


def stage_observation(settings, month: date) -> dict:
    from synchro_dagster import warehouse
    from synchro_dagster.observation.build import Window, observe_month

    window = Window(
        month, settings.inactivity_days, settings.lookback_months, settings.retention_months
    )
    with warehouse.connect(settings.warehouse_path) as conn:
        return observe_month(conn, window)


def stage_indicators(settings, month: date) -> dict:
    from synchro_dagster import months, warehouse
    from synchro_dagster.indicators.build import indicators_month
    from synchro_dagster.indicators.estimates import estimates_month

    with warehouse.connect(settings.warehouse_path) as conn:
        rows = indicators_month(conn, month)
        months.record(conn, month, "marts", RUN_ID)
        estimates_month(conn, month, settings.inactivity_days)
    return {"indicators": rows}


def stage_revision(settings, month: date) -> dict:
    from synchro_dagster import warehouse
    from synchro_dagster.indicators.revision import revise
    from synchro_dagster.observation.build import Window

    window = Window(
        month, settings.inactivity_days, settings.lookback_months, settings.retention_months
    )
    with warehouse.connect(settings.warehouse_path) as conn:
        revised, _ = revise(conn, window, settings.revision_months)
    return {"months_revised": len(revised)}


def stage_revision_redrawn(settings, month: date) -> dict:
    """The revision as it was before its windows' kept records were carried from one window to
    the next: every window but the latest (which reads the month's stored generation) draws
    them from the whole staged history, and reads identity again. Run on a copy of the
    warehouse after the month (the revision writes only its vintage and its generation)."""
    from synchro_dagster.indicators import revision

    compute = revision.compute_month

    def from_staging(conn, window, previous, ids):
        conn.execute("DELETE FROM core.kept_evidence WHERE kept_for = 'revision'")
        conn.execute("DROP TABLE IF EXISTS _kept_until")
        compute(conn, window, previous)

    revision.compute_month = from_staging
    return stage_revision(settings, month)


def stage_publication(settings, month: date) -> dict:
    """What publish_job and feedback_job write after a monthly run."""
    import polars as pl

    from synchro_dagster import warehouse
    from synchro_dagster.publish import public
    from synchro_dagster.publish.feedback import publish_feedback
    from synchro_dagster.publish.report import write_reports
    from synchro_dagster.publish.snapshot import publish_snapshot

    with warehouse.connect(settings.warehouse_path) as conn:
        table = public.public_table(
            public.indicator_cells(conn), settings.min_cell, settings.lookback_months
        )
        estimated = public.public_estimates(public.estimate_cells(conn), table)
        public.write_public(table, settings.public_dir, settings.min_cell, estimated)
        publish_snapshot(conn, settings.snapshot_path)
        publish_feedback(
            conn, settings.landing_dir, settings.feedback_dir, month, settings.min_cell
        )
    estimations = settings.public_dir / "estimations.parquet"
    written = write_reports(
        pl.read_parquet(settings.public_dir / "indicators.parquet"),
        settings.reports_dir,
        settings,
        date.today(),
        estimates=pl.read_parquet(estimations) if estimations.is_file() else None,
    )
    return {"reports": len(written.months), "pdf": written.pdf_problem is None}


def one_stage(stage: str, data: Path, month: str) -> None:
    """Runs one stage of one month and prints its figures as JSON (last line of stdout)."""
    from synchro_dagster.settings import Settings

    settings = Settings.from_env(data)
    run = globals()[f"stage_{stage}"]
    baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    t0 = time.perf_counter()
    extra = run(settings, date.fromisoformat(month + "-01"))
    seconds = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps({"seconds": seconds, "peak": peak, "baseline": baseline, **extra}))


# ---- the parent: territories, months, paired Dagster runs -----------------------------------


def progress(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


def child(args: list[str], env: dict[str, str], what: str) -> str:
    """Runs a process and returns its stdout; its stderr (a stage's progress, an error) goes to
    ours as it comes; a failure stops the bench saying which step."""
    done = subprocess.run(args, env=env, stdout=subprocess.PIPE, text=True)
    if done.returncode != 0:
        raise SystemExit(f"bench/pipeline.py: {what} failed (exit {done.returncode}); see above")
    return done.stdout


def run_stage(stage: str, data: Path, month: str, env: dict[str, str]) -> dict:
    args = [sys.executable, __file__, "--stage", stage, "--data-dir", str(data), "--month", month]
    out = child(args, env, f"{stage} of {month} in {data}")
    return json.loads(out.strip().splitlines()[-1])


def run_dagster(data: Path, month: str, env: dict[str, str]) -> dict:
    """`synchro run` of one month on `data`: the process's wall time and peak RSS, and each
    job's run duration as the instance recorded it."""
    env = {**env, "DAGSTER_HOME": str(data / "dagster_home")}
    log = data / f"synchro-run-{month}.log"
    args = [sys.executable, "-m", "synchro_dagster.cli", "run", "--data-dir", str(data)]
    t0 = time.perf_counter()
    with log.open("wb") as out:  # a file, not a pipe: wait4 gives the peak RSS of this child
        proc = subprocess.Popen([*args, "--months", month], env=env, stdout=out, stderr=out)
        _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    if os.waitstatus_to_exitcode(status) != 0:
        sys.stderr.write(log.read_text(errors="replace")[-4000:])
        raise SystemExit(f"bench/pipeline.py: synchro run of {month} failed; its log: {log}")
    code = (
        "import json, dagster as dg; i = dg.DagsterInstance.get(); "
        f"r = i.get_run_records(limit={len(JOBS)}); "
        "print(json.dumps({x.dagster_run.job_name: x.end_time - x.start_time for x in r}))"
    )
    runs = child([sys.executable, "-c", code], env, f"reading the runs of {data}")
    return {"wall": wall, "peak": usage.ru_maxrss * 1024, "jobs": json.loads(runs)}


def warehouse_figures(data: Path, month: str) -> dict:
    import duckdb

    path = data / "warehouse" / "synchro.duckdb"
    first = date.fromisoformat(month + "-01")
    with duckdb.connect(str(path), read_only=True) as conn:
        tables = [
            f"staging.{t}"
            for (t,) in conn.execute(
                "SELECT table_name FROM duckdb_tables() WHERE schema_name = 'staging'"
            ).fetchall()
        ]
        union = " UNION ALL ".join(f"SELECT month FROM {t}" for t in tables)
        rows, history = conn.execute(
            f"SELECT count(*) FILTER (month = $m), count(*) FILTER (month <= $m) FROM ({union})",
            {"m": first},
        ).fetchone()
        (households,) = conn.execute(
            "SELECT count(*) FROM core.household_months WHERE month = ?", [first]
        ).fetchone()
    return {"rows": rows, "history": history, "households": households, "db": path.stat().st_size}


class Territory:
    """One size: its generated files, the plain data directory, the Dagster one, its results."""

    def __init__(self, work: Path, households: int, months: int, seed: int):
        self.root = work / f"h{households}-m{months}-s{seed}"
        self.households, self.months, self.seed = households, months, seed
        self.plain, self.dagster = self.root / "plain", self.root / "dagster"
        self.results = self.root / "results.jsonl"
        self.env = environment(months)

    def prepare(self) -> None:
        if (self.root / "generated").is_file():
            return
        progress(f"{self.households:,} households: generating {self.months} months ...")
        shutil.rmtree(self.root, ignore_errors=True)
        t0 = time.perf_counter()
        code = (
            "import sys; from datetime import date; from pathlib import Path; "
            "from synchro_dagster.synthetic import generate; "
            "generate(Path(sys.argv[1]), date.fromisoformat(sys.argv[2]), *map(int, sys.argv[3:]))"
        )
        args = [sys.executable, "-c", code, str(self.plain), month_key(1) + "-01"]
        child([*args, str(self.months), str(self.households), str(self.seed)], self.env, "generate")
        self.dagster.mkdir(parents=True)
        (self.dagster / "landing").symlink_to(self.plain / "landing")
        (self.root / "generated").write_text(f"{time.perf_counter() - t0:.1f} s\n")
        progress(f"{self.households:,} households: generated in {time.perf_counter() - t0:.0f} s")

    def done(self) -> list[dict]:
        if not self.results.is_file():
            return []
        return [json.loads(line) for line in self.results.read_text().splitlines() if line]

    def checkpoint(self, month: str) -> None:
        """The warehouse as it was before `month`, kept until the month is done: a month
        interrupted half-way starts again from it."""
        live = self.plain / "warehouse" / "synchro.duckdb"
        saved = self.root / "before.duckdb"
        mark = self.root / "before.month"
        if mark.is_file() and mark.read_text() == month:
            progress(f"{self.households:,} households: {month} restarted from before.duckdb")
            live.unlink(missing_ok=True)
            live.with_suffix(".duckdb.wal").unlink(missing_ok=True)
            if saved.is_file():
                shutil.copyfile(saved, live)
            return
        saved.unlink(missing_ok=True)
        if live.is_file():
            shutil.copyfile(live, saved)
        mark.write_text(month)

    def revision_redrawn(self, month: str, label: str) -> dict:
        """The revision as before (`stage_revision_redrawn`), on a copy of the warehouse after
        the month, and whether it revised the same figures."""
        import duckdb

        copy = self.root / "redrawn"
        shutil.rmtree(copy, ignore_errors=True)
        (copy / "warehouse").mkdir(parents=True)
        shutil.copyfile(
            self.plain / "warehouse" / "synchro.duckdb", copy / "warehouse" / "synchro.duckdb"
        )
        progress(f"{label}: the revision as before, on a copy ...")
        figures = run_stage(REDRAWN, copy, month, self.env)
        rows = []
        for data in (self.plain, copy):
            with duckdb.connect(str(data / "warehouse" / "synchro.duckdb"), read_only=True) as conn:
                rows.append(
                    conn.execute(
                        "SELECT * FROM marts.revised_indicators WHERE vintage = ? ORDER BY ALL",
                        [date.fromisoformat(month + "-01")],
                    ).fetchall()
                )
        shutil.rmtree(copy)
        figures["identical"] = rows[0] == rows[1]
        progress(
            f"{label}: revision as before {figures['seconds']:.1f} s, "
            f"same figures: {figures['identical']}"
        )
        return figures

    def run_month(self, index: int, with_dagster: bool) -> dict:
        month = month_key(index)
        label = f"{self.households:,} households, {month} ({index}/{self.months})"
        self.checkpoint(month)
        result: dict = {"households_start": self.households, "index": index, "month": month}
        for stage in STAGES:
            progress(f"{label}: {stage} ...")
            figures = run_stage(stage, self.plain, month, self.env)
            result[stage] = figures
            progress(
                f"{label}: {stage} {figures['seconds']:.1f} s, peak {figures['peak'] / GB:.2f} GB"
            )
        result.update(warehouse_figures(self.plain, month))
        result[REDRAWN] = self.revision_redrawn(month, label)
        if with_dagster:
            target = self.dagster / "warehouse" / "synchro.duckdb"
            target.parent.mkdir(mode=0o700, exist_ok=True)
            target.unlink(missing_ok=True)
            target.with_suffix(".duckdb.wal").unlink(missing_ok=True)
            saved = self.root / "before.duckdb"
            if saved.is_file():
                shutil.copyfile(saved, target)
            progress(f"{label}: synchro run (Dagster) on a copy of the warehouse ...")
            result["dagster"] = run_dagster(self.dagster, month, self.env)
            progress(f"{label}: Dagster {result['dagster']['wall']:.1f} s (process)")
        with self.results.open("a") as out:
            out.write(json.dumps(result) + "\n")
        (self.root / "before.month").unlink()
        return result


# ---- printing ------------------------------------------------------------------------------


def seconds(result: dict, stage: str) -> float:
    """A stage's time; for "dagster", the month's three runs."""
    if stage == "dagster":
        return sum(result["dagster"]["jobs"].values())
    return result[stage]["seconds"]


def fmt_stage(figures: dict) -> str:
    return f"{figures['seconds']:6.1f} s {figures['peak'] / GB:5.2f} GB"


def print_table(results: list[dict]) -> None:
    print(
        f"{'size':>7} {'month':<7} {'rows':>9} {'history':>10} {'hh win':>7} "
        + " ".join(f"{s:>16}" for s in STAGES)
        + f" {'plain':>7} {'duckdb':>7}"
    )
    for r in results:
        print(
            f"{r['households_start']:>7,} {r['month']:<7} {r['rows']:>9,} {r['history']:>10,} "
            f"{r['households']:>7,} "
            + " ".join(f"{fmt_stage(r[s]):>16}" for s in STAGES)
            + f" {sum(r[s]['seconds'] for s in STAGES):>6.1f}s {r['db'] / 2**20:>5.0f}MB"
        )
    print(
        "rows: the month's staged rows; history: staged rows up to the month; hh win: households "
        "in the month's observation window; each stage: time and peak RSS of its own process; "
        "plain: the five stages' time; duckdb: the warehouse file after the month.\n"
    )
    print(
        f"{'size':>7} {'month':<7} {'plain':>7} "
        + " ".join(f"{j:>12}" for j in JOBS)
        + f" {'dagster':>8} {'overhead':>9} {'process':>8} {'peak':>7}"
    )
    for r in results:
        if "dagster" not in r:
            continue
        d, plain = r["dagster"], sum(r[s]["seconds"] for s in STAGES)
        print(
            f"{r['households_start']:>7,} {r['month']:<7} {plain:>6.1f}s "
            + " ".join(f"{d['jobs'].get(j, 0):>11.1f}s" for j in JOBS)
            + f" {seconds(r, 'dagster'):>7.1f}s {seconds(r, 'dagster') - plain:>+8.1f}s"
            f" {d['wall']:>7.1f}s {d['peak'] / GB:>5.2f}GB"
        )
    print(
        "The same month through Dagster (`synchro run` on a copy of the warehouse as it was "
        "before the month): each job's run as the instance recorded it (checks included), "
        "their sum, its overhead against the plain stages, and the whole process (start-up, "
        "definitions) with its peak RSS."
    )


def print_revision(results: list[dict]) -> None:
    paired = [r for r in results if REDRAWN in r]
    if not paired:
        return
    print(f"\n{'size':>7} {'month':<7} {'history':>10} {'revision':>9} {'as before':>10} same")
    for r in paired:
        print(
            f"{r['households_start']:>7,} {r['month']:<7} {r['history']:>10,} "
            f"{r['revision']['seconds']:>8.2f}s {r[REDRAWN]['seconds']:>9.2f}s "
            f"{'yes' if r[REDRAWN]['identical'] else 'NO'}"
        )
    print(
        "The revision paired with the revision as before (every window but the latest drawing "
        "its kept records from the whole staged history), on a copy of the warehouse after the "
        "month; same: the vintage's revised figures identical, row for row."
    )


def fit(points: list[tuple[float, float, float]]) -> str:
    """log y = c + a log rows + b log(history/rows), least squares; the terms that vary."""
    import numpy as np

    data = np.log(np.array([p for p in points if min(p) > 0]))
    if len(data) < 2:
        return "too few points"
    columns, names = [np.ones(len(data))], []
    # a term is fitted where it varies: rows across sizes (x2 at least), history/rows across
    # months (x1.5); within one size a month's rows barely move and would fit noise
    terms = ((data[:, 0], "rows", np.log(2)), (data[:, 1] - data[:, 0], "history/rows", 0.4))
    for values, name, spread in terms:
        if np.ptp(values) >= spread:
            columns.append(values)
            names.append(name)
    if not names or len(data) <= len(names):
        return "too few distinct points"
    coef, *_ = np.linalg.lstsq(np.column_stack(columns), data[:, 2], rcond=None)
    return " * ".join(f"{n}^{c:.2f}" for n, c in zip(names, coef[1:], strict=True))


def print_fits(results: list[dict]) -> None:
    print("\nGrowth fits (log-log least squares over every size and month):")
    for stage in (*STAGES, "dagster"):
        rows = [r for r in results if stage in r]
        if not rows:
            continue
        times = fit([(r["rows"], r["history"], seconds(r, stage)) for r in rows])
        peaks = fit([(r["rows"], r["history"], r[stage]["peak"]) for r in rows])
        print(f"  {stage:<12} time ~ {times:<32} peak RSS ~ {peaks}")
    by_size: dict[int, list[dict]] = {}
    for r in results:
        by_size.setdefault(r["households_start"], []).append(r)
    for size, rows in by_size.items():
        if len(rows) < 2:
            continue
        import numpy as np

        history = np.log([r["history"] for r in rows])
        slopes = []
        for stage in STAGES:
            times = np.log([max(r[stage]["seconds"], 1e-3) for r in rows])
            slopes.append(f"{stage} {np.polyfit(history, times, 1)[0]:+.2f}")
        print(f"  {size:,} households, time against the history: " + ", ".join(slopes))


def print_targets(results: list[dict]) -> None:
    def find(size: int, index: int) -> dict | None:
        return next(
            (r for r in results if r["households_start"] == size and r["index"] == index), None
        )

    def missing(what: str) -> str:
        return f"not measured (run {what})"

    print("\nTargets (issue 15), target / measured:")
    paris = find(300_000, 3)
    if paris and "dagster" in paris:
        d = paris["dagster"]
        runs = sum(d["jobs"].values())
        print(
            f"  Paris-sized month 3 through Dagster: < 600 s and < 8 GB / {runs:.0f} s "
            f"({d['wall']:.0f} s process), {d['peak'] / GB:.1f} GB peak; "
            f"{paris['rows']:,} rows, history {paris['history']:,}"
        )
    else:
        print(
            "  Paris-sized month 3 through Dagster: < 600 s and < 8 GB / "
            + missing("--sizes 300000 --months 3 --dagster last")
        )
    first, sixth = find(30_000, 1), find(30_000, 6)
    if first and sixth:
        t = sixth["identity"]["seconds"] / first["identity"]["seconds"]
        m = sixth["identity"]["peak"] / first["identity"]["peak"]
        print(
            f"  identity at 30,000, month 6 / month 1: <= 1.3x time and memory / {t:.2f}x time "
            f"({first['identity']['seconds']:.1f} -> {sixth['identity']['seconds']:.1f} s), "
            f"{m:.2f}x memory ({first['identity']['peak'] / GB:.2f} -> "
            f"{sixth['identity']['peak'] / GB:.2f} GB)"
        )
    else:
        print(
            "  identity at 30,000, month 6 / month 1: <= 1.3x / "
            + missing("--sizes 30000 --months 6")
        )
    metro = [r for r in results if r["households_start"] == 2_000 and "dagster" in r]
    if metro:
        shown = ", ".join(
            f"{r['month']} {r['dagster']['jobs']['monthly_job']:.1f} s "
            f"({seconds(r, 'dagster'):.1f} s with feedback and publication)"
            for r in metro
        )
        twelve = "" if any(r["index"] == 12 for r in metro) else " (month 12: --months 12)"
        print(f"  metropole (2,000) month through Dagster (monthly_job): < 10 s / {shown}{twelve}")
    else:
        print("  metropole (2,000) month through Dagster: < 10 s / " + missing("--sizes 2000"))
    for size in sorted({r["households_start"] for r in results}):
        rows = [r for r in results if r["households_start"] == size]
        if len(rows) < 2:
            continue
        per = [1000 * r["observation"]["seconds"] / max(r["households"], 1) for r in rows]
        print(
            f"  observation proportional to the households in the window ({size:,}): flat / "
            f"{per[0]:.2f} -> {per[-1]:.2f} s per 1,000 households in the window, months 1 -> "
            f"{rows[-1]['index']} (history x{rows[-1]['history'] / rows[0]['history']:.1f})"
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="2000,10000", help="households, comma-separated")
    parser.add_argument("--months", type=int, default=3)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--dagster", choices=("all", "last", "none"), default="last")
    parser.add_argument("--work", type=Path, help="kept, and resumed from, between runs")
    parser.add_argument("--stage", choices=(*STAGES, REDRAWN), help=argparse.SUPPRESS)
    parser.add_argument("--data-dir", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--month", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.stage:  # a stage's own progress (identity's, chunk by chunk), as the run's log has it
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("[%(asctime)s]   %(message)s", "%H:%M:%S"))
        logging.getLogger("synchro").addHandler(handler)
        logging.getLogger("synchro").setLevel(logging.INFO)
        one_stage(args.stage, args.data_dir, args.month)
        return
    sizes = [int(s.replace("_", "")) for s in args.sizes.split(",")]
    with tempfile.TemporaryDirectory(prefix="synchro-bench-") as tmp:
        work = (args.work or Path(tmp)).resolve()
        progress(f"work directory {work}")
        results = []
        for size in sizes:
            territory = Territory(work, size, args.months, args.seed)
            territory.prepare()
            done = {r["index"]: r for r in territory.done()}
            for index in range(1, args.months + 1):
                if index in done:
                    results.append(done[index])
                    continue
                dagster = args.dagster == "all" or (args.dagster == "last" and index == args.months)
                results.append(territory.run_month(index, dagster))
        print_table(results)
        print_revision(results)
        print_fits(results)
        print_targets(results)


if __name__ == "__main__":
    main()
