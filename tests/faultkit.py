"""Killing a `synchro run` at a chosen stage, with SIGKILL on its whole process group.

The run is a real child process (`python -c CHILD`) executing the CLI with one function wrapped:
at the chosen stage, the stage's write stops just before its COMMIT (staging, identity, core,
marts: every write is `warehouse.replace_month`'s one transaction) or just before the snapshot
is written (publish), writes a marker file and waits. The parent sees the marker and kills the
group: the kill lands at that point every time, whatever the machine's speed.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import duckdb
from pipelinekit import KEY

STAGES = ("staging", "identity", "core", "marts", "publish")

CHILD = r"""
import os, sys, time
from pathlib import Path
from synchro_dagster import warehouse
from synchro_dagster.defs import publish
from synchro_dagster.cli import main

stage, marker, argv = sys.argv[1], Path(sys.argv[2]), sys.argv[3:]

def stop():
    marker.write_text(str(os.getpid()))
    time.sleep(600)  # the parent kills the process group here

class StopsAtCommit:
    def __init__(self, conn):
        self._conn = conn
    def execute(self, query, *args):
        if query == "COMMIT":
            stop()
        return self._conn.execute(query, *args)
    def __getattr__(self, name):
        return getattr(self._conn, name)

original_replace = warehouse.replace_month
def replace_month(conn, month, rows, source=None):
    if next(iter(rows)).split(".")[0] == stage:
        conn = StopsAtCommit(conn)
    return original_replace(conn, month, rows, source)
warehouse.replace_month = replace_month

original_snapshot = publish.publish_snapshot
def publish_snapshot(conn, target):
    if stage == "publish":
        stop()
    return original_snapshot(conn, target)
publish.publish_snapshot = publish_snapshot

sys.exit(main(argv))
"""


def environment() -> dict[str, str]:
    root = str(Path(__file__).resolve().parents[1])
    return {
        **os.environ,
        "SYNCHRO_PSEUDONYMISATION_KEY": KEY,
        "SYNCHRO_FIRST_MONTH": "2025-01",
        "PYTHONPATH": os.pathsep.join([root, os.environ.get("PYTHONPATH", "")]),
    }


def synchro(*args: str, stage: str | None = None, marker: Path | None = None) -> subprocess.Popen:
    """`synchro ARGS` as a child process in its own process group; with `stage`, it stops there
    (see `CHILD`) and writes `marker`."""
    code = ["-c", CHILD, stage, str(marker)] if stage else ["-m", "synchro_dagster.cli"]
    return subprocess.Popen(
        [sys.executable, *code, *args],
        env=environment(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group, as a shell gives a command
    )


def kill_at(stage: str, data: Path, months: str, tmp_path: Path, timeout: float = 120) -> None:
    """Runs `synchro run --months MONTHS` on `data` and SIGKILLs its process group once it
    reaches `stage`."""
    marker = tmp_path / f"reached-{stage}"
    child = synchro("run", "--data-dir", str(data), "--months", months, stage=stage, marker=marker)
    deadline = time.monotonic() + timeout
    while not marker.exists():
        if child.poll() is not None:
            out, err = child.communicate()
            raise AssertionError(f"the run ended before {stage} ({child.returncode}):\n{out}{err}")
        if time.monotonic() > deadline:
            os.killpg(child.pid, signal.SIGKILL)
            raise AssertionError(f"the run did not reach {stage} in {timeout:.0f} s")
        time.sleep(0.05)
    os.killpg(child.pid, signal.SIGKILL)
    child.wait()
    child.communicate()


def results(data: Path) -> dict[str, object]:
    """What a run must converge to: every indicator and the households of every month (ids may
    differ between two histories; counts may not)."""
    with duckdb.connect(str(data / "warehouse" / "synchro.duckdb"), read_only=True) as conn:
        return {
            "indicators": conn.execute(
                "SELECT month, indicator, dimension, value FROM marts.indicators ORDER BY ALL"
            ).fetchall(),
            "households": conn.execute(
                "SELECT month, count(DISTINCT household_id), count(*) FROM core.household_months "
                "GROUP BY month ORDER BY month"
            ).fetchall(),
        }


def forget(data: Path, since: str) -> None:
    """Forgets every month from `since` on, as if it had never been computed (its staging
    kept): identity, core, marts and their records."""
    with duckdb.connect(str(data / "warehouse" / "synchro.duckdb")) as conn:
        tables = conn.execute(
            "SELECT table_schema || '.' || table_name FROM information_schema.columns "
            "WHERE column_name = 'month' AND table_schema IN ('identity', 'core', 'marts') "
            "OR table_schema || '.' || table_name = 'lineage.months_computed'"
        ).fetchall()
        for (table,) in tables:
            conn.execute(f"DELETE FROM {table} WHERE month >= ?", [date.fromisoformat(since)])
