"""Runs that died, and one warehouse-writing run at a time.

A run killed or crashed (kill -9, a full disk, a native crash) leaves the instance saying it is
STARTED, holding its `duckdb` pool slot: every later run would wait for that slot forever.
`reap_dead_runs` finds such runs — their process, recorded in the run's tag `synchro/pid` (runs
`synchro run` creates) or in the engine event Dagster writes when a run's process starts (runs
the UI, the schedule and the sensors launch), no longer exists — marks them failed and frees
their slots. It runs at the start of every run (`synchro run` and the executor below) and every
30 s in the `dead_runs_sensor`, so the schedule's and the sensors' queued runs go on by
themselves. On an instance shared by several territories, each territory reaps its own runs
only (those of its code location): its processes run on its machine, another's may not.

`exclusive` is a lock on the data directory, held by the OS for the process that took it: it
dies with it, so a killed run never leaves it held. `synchro run` holds it for all its months,
and every run's executor for the run: two runs never interleave their writes. A second run
waits for it at most `SYNCHRO_RUN_WAIT_SECONDS` (default 30 minutes), saying who holds it, then
gives up with a clear message.
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

import dagster as dg
from dagster._core.definitions.executor_definition import IN_PROC_CONFIG
from dagster._core.events import DagsterEvent
from dagster._core.executor.in_process import InProcessExecutor
from dagster._core.storage.tags import REPOSITORY_LABEL_TAG

from synchro_dagster import warehouse
from synchro_dagster.settings import Settings, private_dir

REPOSITORY = "__repository__"  # the repository a `Definitions` object becomes
PID_TAG = "synchro/pid"  # the process executing the run, set by `synchro run` (launch.py)
WATCHED = [
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
    dg.DagsterRunStatus.CANCELING,
]
CLOCK_SLACK = 2.0  # seconds: /proc's boot time is a whole second


class RunsBusy(RuntimeError):
    """Another process kept the data directory for longer than the allowed wait."""


def _process_started(pid: int) -> float | None:
    """When process `pid` started (epoch seconds), -1.0 for a zombie; None where /proc is not."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        boot = next(
            float(line.split()[1])
            for line in Path("/proc/stat").read_text().splitlines()
            if line.startswith("btime ")
        )
    except (OSError, StopIteration, ValueError):
        return None
    fields = stat.rsplit(")", 1)[1].split()  # after the command name, which may hold spaces
    if fields[0] == "Z":
        return -1.0
    return boot + int(fields[19]) / os.sysconf("SC_CLK_TCK")


def process_alive(pid: int, seen_at: float) -> bool:
    """Process `pid`, seen running a run at `seen_at`, still runs it (not a later process that
    got the same pid)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: it exists
        pass
    started = _process_started(pid)
    return started is None or 0 <= started <= seen_at + CLOCK_SLACK


def run_process(instance: dg.DagsterInstance, record: dg.RunRecord) -> tuple[int, float] | None:
    """(pid, when it was seen running the run) of the process executing a run, if recorded."""
    run = record.dagster_run
    if PID_TAG in run.tags:
        return int(run.tags[PID_TAG]), record.create_timestamp.timestamp()
    events = instance.get_records_for_run(run.run_id, of_type=dg.DagsterEventType.ENGINE_EVENT)
    for event in events.records:
        data = event.event_log_entry.dagster_event.engine_event_data
        pid = data.metadata.get("pid") if data else None
        if pid is not None:
            return int(pid.value), event.event_log_entry.timestamp
    return None


def location_label(location: str) -> dict[str, str]:
    """The tag Dagster gives every run of a code location's repository."""
    return {REPOSITORY_LABEL_TAG: f"{REPOSITORY}@{location}"}


def own_location(settings: Settings) -> str | None:
    """The code location whose runs a territory reaps; None (every run) for a data directory on
    its own instance."""
    return settings.location_name if settings.territory else None


def reap_dead_runs(instance: dg.DagsterInstance, location: str | None = None) -> list[str]:
    """Marks failed every unfinished run whose process is gone and frees the pool slots of every
    finished run still holding some (of the code location `location` only, if given); one line
    per run for the log."""
    lines = []
    storage = instance.event_log_storage
    own = location_label(location) if location else {}
    for record in instance.get_run_records(dg.RunsFilter(statuses=WATCHED, tags=own)):
        run = record.dagster_run
        found = run_process(instance, record)
        if found is None or process_alive(*found):
            continue
        what = f"{run.job_name} {run.tags.get('dagster/partition', '')}".strip()
        message = (
            f"Run {run.run_id} ({what}) was {run.status.value} but its process {found[0]} is "
            "gone (killed or crashed): marked failed"
        )
        instance.report_run_failed(run, message + ".")
        freed = _free_slots(instance, run.run_id)
        lines.append(f"{message}, {freed} pool slot(s) freed. Re-run its month to finish it.")
    if storage.supports_global_concurrency_limits:
        for run_id in storage.get_concurrency_run_ids():
            run = instance.get_run_by_id(run_id)
            if run is not None and not own.items() <= run.tags.items():
                continue  # another territory's run
            if (run is None or run.is_finished) and (freed := _free_slots(instance, run_id)):
                lines.append(f"Run {run_id} had ended holding {freed} pool slot(s): freed.")
    return lines


def _free_slots(instance: dg.DagsterInstance, run_id: str) -> int:
    """Frees every pool slot a run holds (and its steps' places in the pools' queues); how many
    slots it held."""
    storage = instance.event_log_storage
    if not storage.supports_global_concurrency_limits:
        return 0
    held = sum(
        slot.run_id == run_id
        for pool in storage.get_concurrency_keys()
        for slot in storage.get_concurrency_info(pool).claimed_slots
    )
    storage.free_concurrency_slots_for_run(run_id)
    return held


_held: dict[Path, tuple[int, int]] = {}  # lock file -> (descriptor, depth) in this process


def lock_path(settings: Settings) -> Path:
    return settings.warehouse_path.parent / "run.lock"


def holder(path: Path) -> str:
    """Who holds the lock, as its holder wrote it."""
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
        return f"{info['what']} (process {info['pid']}, since {info['since']})"
    except (OSError, ValueError, KeyError):
        return "another process"


@contextmanager
def exclusive(
    settings: Settings, what: str, waiting: Callable[[str], None] = lambda line: None
) -> Iterator[None]:
    """Holds the data directory's run lock (re-entrant in one process); waits for another
    holder at most `settings.run_wait_seconds`, calling `waiting` once with who it waits for;
    raises RunsBusy after that."""
    path = lock_path(settings)
    if path in _held:
        fd, depth = _held[path]
        _held[path] = (fd, depth + 1)
        try:
            yield
        finally:
            _held[path] = (fd, _held[path][1] - 1)
        return
    private_dir(path.parent)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    deadline = time.monotonic() + settings.run_wait_seconds
    told = False
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except BlockingIOError:
            if time.monotonic() > deadline:
                os.close(fd)
                raise RunsBusy(
                    f"{settings.data_dir} is still in use by {holder(path)} after "
                    f"{settings.run_wait_seconds} s: nothing was run. Run again when it has "
                    "ended (the lock goes with its process: a killed run does not keep it), or "
                    "set SYNCHRO_RUN_WAIT_SECONDS to wait longer."
                ) from None
            if not told:
                waiting(
                    f"{settings.data_dir} is in use by {holder(path)}: waiting for it to end "
                    f"(at most {settings.run_wait_seconds} s)..."
                )
                told = True
            time.sleep(0.2)
    since = f"{datetime.now():%Y-%m-%d %H:%M:%S}"
    os.ftruncate(fd, 0)
    os.pwrite(fd, json.dumps({"pid": os.getpid(), "what": what, "since": since}).encode(), 0)
    _held[path] = (fd, 1)
    try:
        yield
    finally:
        del _held[path]
        os.ftruncate(fd, 0)
        os.close(fd)  # releases the lock


class ExclusiveExecutor(dg.Executor):
    """Executes a run's steps in its own process, as the in-process executor does, holding the
    data directory's lock, after reaping the runs that died, and the warehouse open for all the
    steps (`warehouse.held_open`)."""

    def __init__(self, inner: InProcessExecutor, settings: Settings):
        self._inner = inner
        self._settings = settings

    @property
    def retries(self):
        return self._inner.retries

    def execute(self, plan_context, execution_plan) -> Iterator[DagsterEvent]:
        run = plan_context.dagster_run
        month = run.tags.get("dagster/partition")
        what = f"the run {run.run_id} ({run.job_name}{f' {month}' if month else ''})"
        instance = plan_context.instance
        with exclusive(self._settings, what, lambda line: instance.report_engine_event(line, run)):
            for line in reap_dead_runs(instance, own_location(self._settings)):
                yield DagsterEvent.engine_event(plan_context, line)
            with warehouse.held_open(self._settings.warehouse_path):
                yield from self._inner.execute(plan_context, execution_plan)


def exclusive_executor(settings: Settings) -> dg.ExecutorDefinition:
    @dg.executor(name="exclusive_in_process", config_schema=IN_PROC_CONFIG)
    def _executor(init_context: dg.InitExecutorContext) -> ExclusiveExecutor:
        inner = dg.in_process_executor.executor_creation_fn(init_context)
        return ExclusiveExecutor(inner, settings)

    return _executor


def dead_runs_sensor(location: str | None = None) -> dg.SensorDefinition:
    @dg.sensor(
        name="dead_runs_sensor",
        minimum_interval_seconds=30,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Every 30 s, marks failed the runs whose process is gone (killed, crashed) "
        "and frees their duckdb pool slots, so that the queued runs of the schedule and the "
        "sensors go on.",
    )
    def _sensor(context: dg.SensorEvaluationContext) -> dg.SkipReason:
        lines = reap_dead_runs(context.instance, location)
        for line in lines:
            context.log.warning(line)
        return dg.SkipReason(" ".join(lines) or "no run has died")

    return _sensor
