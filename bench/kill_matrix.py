"""A run killed at every stage: does a plain re-run finish by itself and converge?

On a tiny territory (40 households, 2 months; month 1 run once), `synchro run --months 2025-02`
is killed with SIGKILL on its process group at each stage — staging, identity, core, marts
(just before the stage's COMMIT) and publish (before the snapshot is written), see
tests/faultkit.py — then the same command is run again, with nothing done by hand. For each
stage: what the instance held after the kill (run status, duckdb pool slots), whether the
re-run finished, what it said, and whether marts.indicators and the household counts equal
those of an uninterrupted run (and whether the household ids do). Figures only.

    .venv/bin/python bench/kill_matrix.py

Measured 2026-12-01 on the shared 2-core machine (load about 8; uninterrupted run of 2025-02:
54.7 s): killed at staging, identity, core, marts, publish, the instance held the run STARTED
with 1 duckdb slot claimed every time; every re-run said "(monthly_job 2025-02) was STARTED but
its process N is gone (killed or crashed): marked failed, 1 pool slot(s) freed" (publish_job
for publish), finished (exit 0, 37-51 s) and gave marts.indicators and the household counts of
the uninterrupted run. Household ids equal after a kill at staging or identity; different after
a kill at core, marts or publish: the killed run had committed the month's identity, the re-run
computes it a second time, and a second pass over a month gives households other ids (counts and
indicators equal).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import duckdb  # noqa: E402
import faultkit  # noqa: E402

MONTH = "2025-02"


def synchro(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "synchro_dagster.cli", *args],
        env={**faultkit.environment(), "SYNCHRO_LAST_MONTH": MONTH},
        capture_output=True,
        text=True,
        timeout=600,
    )


def held(data: Path) -> str:
    """Status of the last run and the duckdb slots claimed, read from the instance."""
    code = (
        "import dagster as dg; i = dg.DagsterInstance.get(); r = i.get_runs(limit=1)[0]; "
        "c = i.event_log_storage.get_concurrency_info('duckdb'); "
        "print(r.status.value, len(c.claimed_slots), 'slot(s) claimed')"
    )
    env = {**os.environ, "DAGSTER_HOME": str(data / "dagster_home")}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    return out.stdout.strip()


def household_ids(data: Path) -> list:
    with duckdb.connect(str(data / "warehouse" / "synchro.duckdb"), read_only=True) as conn:
        return conn.execute(
            "SELECT month, household_id FROM core.household_months ORDER BY ALL"
        ).fetchall()


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        half = root / "half"
        assert synchro("generate", "--out", str(half), "--months", "2", "--households", "40",
                       "--seed", "5").returncode == 0  # fmt: skip
        assert synchro("run", "--data-dir", str(half), "--months", "2025-01").returncode == 0
        baseline = root / "baseline"
        shutil.copytree(half, baseline)
        t0 = time.perf_counter()
        assert synchro("run", "--data-dir", str(baseline), "--months", MONTH).returncode == 0
        print(f"uninterrupted run of {MONTH}: {time.perf_counter() - t0:.1f} s")
        expected, ids = faultkit.results(baseline), household_ids(baseline)
        print("| killed at | after the kill | re-run | re-run says | indicators & counts | ids |")
        print("|---|---|---|---|---|---|")
        for stage in faultkit.STAGES:
            data = root / stage
            shutil.copytree(half, data)
            faultkit.kill_at(stage, data, MONTH, root, timeout=300)
            state = held(data)
            t0 = time.perf_counter()
            rerun = synchro("run", "--data-dir", str(data), "--months", MONTH)
            seconds = time.perf_counter() - t0
            said = " ".join(
                re.sub(r"^Run \S+ \(", "(", line.split(". Re-run")[0])
                for line in rerun.stderr.splitlines()
                if "is gone" in line
            )
            same = faultkit.results(data) == expected if rerun.returncode == 0 else "-"
            same_ids = household_ids(data) == ids if rerun.returncode == 0 else "-"
            print(
                f"| {stage} | {state} | exit {rerun.returncode} in {seconds:.1f} s | "
                f"{said} | {'equal' if same is True else same} | "
                f"{'equal' if same_ids is True else same_ids} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
