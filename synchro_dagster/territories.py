"""Several territories on one Dagster instance: each is a code location of its own, and its runs
go to its own Celery queue (deploy/dagster.yaml names this launcher).

A territory's code location (`synchro-<territory>`, a `dagster code-server` started with that
territory's environment: data directory, key) and its Celery workers (listening on the queue of
the same name, started with the same environment) run on the machine holding its data; the
webserver, the daemon, PostgreSQL and Redis hold no key and no person-level data.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from dataclasses import dataclass
from datetime import date
from importlib.resources import files
from pathlib import Path

import dagster as dg
from dagster._core.launcher import LaunchRunContext, ResumeRunContext
from dagster_celery.launcher import CeleryRunLauncher
from dagster_celery.tags import DAGSTER_CELERY_QUEUE_TAG

from synchro_dagster.settings import DEFINITIONS_MODULE, territory_location

TEMPLATES = files("synchro_dagster") / "templates" / "deploy"  # shipped in the package


def queue_of(run: dg.DagsterRun) -> str:
    """A run's Celery queue: its code location's name (`synchro-<territory>`)."""
    return run.remote_job_origin.location_name


class TerritoryRunLauncher(CeleryRunLauncher):
    """dagster-celery's run launcher, sending each run to the queue named after its code
    location, where only that territory's workers listen: a run of territory A is never executed
    by a process holding territory B's key. A run already tagged `dagster-celery/queue` keeps
    it."""

    def _to_queue(self, run: dg.DagsterRun) -> dg.DagsterRun:
        if DAGSTER_CELERY_QUEUE_TAG not in run.tags:
            self._instance.add_run_tags(run.run_id, {DAGSTER_CELERY_QUEUE_TAG: queue_of(run)})
        return self._instance.get_run_by_id(run.run_id)

    def launch_run(self, context: LaunchRunContext) -> None:
        super().launch_run(context._replace(dagster_run=self._to_queue(context.dagster_run)))

    def resume_run(self, context: ResumeRunContext) -> None:
        super().resume_run(context._replace(dagster_run=self._to_queue(context.dagster_run)))


@dataclass(frozen=True)
class Territory:
    """One territory of a shared instance: its name and its data directory on the machine
    `host` that runs its code server (on `port`) and its workers. Its key is its data
    directory's `secrets/pseudonymisation.key` unless its .env names another file
    (SYNCHRO_PSEUDONYMISATION_KEY_FILE)."""

    name: str
    data_dir: Path
    host: str
    port: int

    @property
    def location(self) -> str:
        return territory_location(self.name)

    def environment(self, instance_home: Path) -> dict[str, str]:
        """What its code server and its workers run with (and nothing of another territory)."""
        return {
            "DAGSTER_HOME": str(instance_home),
            "SYNCHRO_TERRITORY": self.name,
            "SYNCHRO_DATA_DIR": str(self.data_dir),
        }

    def code_server(self) -> list[str]:
        return [
            "dagster", "code-server", "start", "-m", DEFINITIONS_MODULE, "-h", "0.0.0.0",
            "-p", str(self.port), "--location-name", self.location,
        ]  # fmt: skip

    def worker(self, instance_home: Path) -> list[str]:
        """A Celery worker for its queue, one run at a time."""
        return [
            "dagster-celery", "worker", "start", "-A", "dagster_celery.app",
            "-y", str(instance_home / "celery.yaml"), "-q", self.location, "-n", self.name,
            "--", "--concurrency=1",
        ]  # fmt: skip


CENTRAL = (
    "dagster-webserver -w workspace.yaml -h 127.0.0.1 -p 3000  # behind the proxy (README)",
    "dagster-daemon run -w workspace.yaml",
)


def workspace(territories: list[Territory]) -> str:
    entries = "".join(
        f"  - grpc_server:  # {t.data_dir} on {t.host}\n"
        f"      host: {t.host}\n      port: {t.port}\n      location_name: {t.location}\n"
        for t in territories
    )
    return "# One code location per territory (synchro territories config).\nload_from:\n" + entries


def write_config(
    out: Path, territories: list[Territory], instance_home: Path | None = None
) -> list[Path]:
    """The instance folder every process of the deployment names as DAGSTER_HOME (at
    `instance_home` on the machines, `out` by default): dagster.yaml, celery.yaml,
    workspace.yaml, one `<territory>.env` per territory, and commands.txt: what to start where."""
    instance_home = instance_home or out
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name in ("dagster.yaml", "celery.yaml"):
        (out / name).write_text(TEMPLATES.joinpath(name).read_text(encoding="utf-8"))
        written.append(out / name)
    (out / "workspace.yaml").write_text(workspace(territories), encoding="utf-8")
    written.append(out / "workspace.yaml")
    for t in territories:
        path = out / f"{t.name}.env"
        lines = [f"# territory {t.name}, on {t.host}: its code server and workers only"]
        lines += [f"{k}={v}" for k, v in t.environment(instance_home).items()]
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        written.append(path)
    path = out / "commands.txt"
    path.write_text("\n".join(commands(instance_home, territories)) + "\n", encoding="utf-8")
    return [*written, path]


def commands(instance_home: Path, territories: list[Territory]) -> list[str]:
    """The command lines of the deployment, machine by machine."""
    shared = "SYNCHRO_POSTGRES_* and SYNCHRO_CELERY_* set (dagster.yaml)"
    lines = [f"# central machine (DAGSTER_HOME={instance_home}, {shared}):"]
    lines += [f"cd {instance_home} && {c}" for c in CENTRAL]
    for t in territories:
        lines.append(
            f"# {t.host}, territory {t.name} (env: {instance_home / t.name}.env, {shared}):"
        )
        lines.append(" ".join(t.code_server()))
        lines.append(" ".join(t.worker(instance_home)))
    return lines


# the demo: two simulated territories, a partner of each re-delivering a file, the landing
# sensors of the daemon turning them into runs that each territory's Celery worker executes
DEMO_TERRITORIES = (("nord", 11), ("sud", 12))  # name, simulator seed
DEMO_MONTH = date(2025, 1, 1)
DEMO_TIMEOUT = 600  # seconds for the demo's runs to end
EXPECTED = {  # the runs the re-deliveries cause, per territory
    "nord": {"monthly_job": "SUCCESS", "publish_job": "SUCCESS", "feedback_job": "SUCCESS"},
    "sud": {"monthly_job": "FAILURE", "feedback_job": "SUCCESS"},
}


def _ancestors(pid: int) -> list[int]:
    found = []
    while pid > 1:
        try:
            pid = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError):
            break
        found.append(pid)
    return found


def _start(command: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    with log.open("w") as out:
        return subprocess.Popen(
            command, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )


def _stop(processes: list[subprocess.Popen]) -> None:
    for process in processes:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
    for process in processes:
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)


def local_environment(home: Path, database: dict[str, str], broker: str) -> dict[str, str]:
    """This process's environment, with the instance `home` on the local PostgreSQL and Redis
    (localservers.py) and this environment's commands first on the PATH."""
    return {
        **os.environ,
        **database,
        "SYNCHRO_CELERY_BROKER": f"{broker}/0",
        "SYNCHRO_CELERY_BACKEND": f"{broker}/1",
        "DAGSTER_HOME": str(home),
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
    }


def executed_by(instance: dg.DagsterInstance, run_id: str, workers: dict[int, str]) -> str:
    """Which of `workers` (pid -> name) executed a run: the one its process descends from."""
    from synchro_dagster.defs.runs import run_process

    (record,) = instance.get_run_records(dg.RunsFilter(run_ids=[run_id]))
    found = run_process(instance, record)
    return next((workers[p] for p in _ancestors(found[0]) if p in workers), "?") if found else "?"


def demo(folder: Path, households: int, keep: bool = False) -> int:
    """Two territories on a local PostgreSQL and Redis, two Celery workers; prints each run,
    where it ran and how it ended, and what the UI shows; with `keep`, leaves everything
    running until Ctrl-C."""
    from synchro_dagster.localservers import free_port, postgres, redis
    from synchro_dagster.settings import create_demo_key, save_months
    from synchro_dagster.synthetic import generate

    folder = folder.resolve()
    if folder.exists() and any(folder.iterdir()):
        print(f"{folder} is not empty: name a new folder.", file=sys.stderr)
        return 1
    t0 = time.perf_counter()
    home = folder / "instance"
    territories = [
        Territory(name, folder / name, "127.0.0.1", free_port()) for name, _ in DEMO_TERRITORIES
    ]
    for t, (_, seed) in zip(territories, DEMO_TERRITORIES, strict=True):
        generate(t.data_dir, DEMO_MONTH, 1, households, seed)
        save_months(t.data_dir, f"{DEMO_MONTH:%Y-%m}", f"{DEMO_MONTH:%Y-%m}")
        create_demo_key(t.data_dir / "secrets" / "pseudonymisation.key")  # one key each
    write_config(home, territories)
    processes: list[subprocess.Popen] = []
    with postgres() as database, redis() as broker:
        shared = local_environment(home, database, broker)
        shared.pop("SYNCHRO_PSEUDONYMISATION_KEY", None)  # each territory has its own file
        env = {t.name: {**shared, **t.environment(home)} for t in territories}
        print(f"PostgreSQL and Redis started; instance {home}.")
        first = [
            subprocess.Popen(
                [sys.executable, "-m", "synchro_dagster.cli", "run", "--data-dir", str(t.data_dir)],
                env=env[t.name],
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
            for t in territories  # both at once: each holds its own data directory
        ]
        for t, done in zip(territories, first, strict=True):
            said = done.communicate()[0]
            print(f"{t.name}: {DEMO_MONTH:%Y-%m} run by `synchro run` (exit {done.returncode})")
            if done.returncode:
                print(said, file=sys.stderr)
                return 1
        nord, sud = (t.data_dir / "landing" / f"{DEMO_MONTH:%Y-%m}" for t in territories)
        resent = next((nord / "siao_insertion").glob("*.csv"))
        resent.write_bytes(resent.read_bytes() + b"\r\n")  # re-sent, one blank line more
        damaged = next((sud / "maraudes").glob("*.xlsx"))
        damaged.write_bytes(b"not a workbook")
        print(f"nord re-delivers {resent.name}; sud delivers a damaged {damaged.name}.")
        try:
            workers = {}
            for t in territories:
                log = folder / f"{t.name}-code-server.log"
                processes.append(_start(t.code_server(), env[t.name], log))
                worker = _start(t.worker(home), env[t.name], folder / f"{t.name}-worker.log")
                processes.append(worker)
                workers[worker.pid] = f"worker {t.name} (queue {t.location}, pid {worker.pid})"
            daemon = ["dagster-daemon", "run", "-w", str(home / "workspace.yaml")]
            processes.append(_start(daemon, shared, folder / "daemon.log"))
            port = free_port()
            ui = ["dagster-webserver", "-w", str(home / "workspace.yaml"), "-h", "127.0.0.1"]
            processes.append(_start([*ui, "-p", str(port)], shared, folder / "webserver.log"))
            print("2 code servers, 2 Celery workers, the daemon and the webserver started.")
            found = _wait_for_runs(home, shared, territories, workers)
            print(ui_runs(f"http://127.0.0.1:{port}"))
            print(ui_assets(f"http://127.0.0.1:{port}"))
            if keep:
                print(f"The UI: http://127.0.0.1:{port} (Ctrl-C to stop everything)")
                with contextlib.suppress(KeyboardInterrupt):
                    signal.pause()
        finally:
            _stop(processes)
    print(f"\nDone in {time.perf_counter() - t0:.0f} s. Logs: {folder}/*.log")
    return 0 if found == EXPECTED else 1


RUNS_QUERY = """{ runsOrError { ... on Runs { results {
    jobName status repositoryOrigin { repositoryLocationName } } } } }"""
ASSETS_QUERY = """{ assetNodes { assetKey { path } repository { location { name } }
    assetPartitionStatuses { ... on TimePartitionStatuses { ranges { status startKey endKey } } }
} }"""
SHOWN_ASSETS = ("staging/siao_insertion", "staging/maraudes", "marts/indicators")


def _graphql(url: str, query: str, timeout: float) -> dict | None:
    """The webserver's answer to `query`; None if it does not answer within `timeout` s."""
    request = urllib.request.Request(
        f"{url}/graphql",
        data=json.dumps({"query": query}).encode(),
        headers={"Content-Type": "application/json"},
    )
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(request, timeout=30) as answer:
                return json.load(answer)["data"]
        except OSError:
            if time.monotonic() > deadline:
                return None
            time.sleep(1)


def ui_runs(url: str, timeout: float = 120) -> str:
    """What the webserver at `url` shows on its Runs page, code location by code location."""
    data = _graphql(url, RUNS_QUERY, timeout)
    if data is None:
        return f"The UI at {url} did not answer in {timeout:.0f} s (webserver.log)."
    runs = data["runsOrError"]["results"]
    counts = Counter((r["repositoryOrigin"]["repositoryLocationName"], r["status"]) for r in runs)
    lines = [f"The UI ({url}, Runs page), per code location:"]
    for location in sorted({loc for loc, _ in counts}):
        shown = ", ".join(
            f"{n} {status}" for (loc, status), n in sorted(counts.items()) if loc == location
        )
        lines.append(f"  {location}: {shown}")
    return "\n".join(lines)


def ui_assets(url: str, timeout: float = 120) -> str:
    """What the webserver at `url` shows on its asset pages: each code location's assets (none
    defined by two) and the months of a few of them, as each territory's own."""
    data = _graphql(url, ASSETS_QUERY, timeout)
    if data is None:
        return f"The UI at {url} did not answer in {timeout:.0f} s (webserver.log)."
    keys: dict[str, set[str]] = {}
    months = {}
    for node in data["assetNodes"]:
        key = "/".join(node["assetKey"]["path"])
        keys.setdefault(node["repository"]["location"]["name"], set()).add(key)
        months[key] = ", ".join(
            f"{r['startKey']}{'' if r['startKey'] == r['endKey'] else '..' + r['endKey']} "
            f"{r['status']}"
            for r in node["assetPartitionStatuses"].get("ranges", [])
        )
    counted = ", ".join(f"{len(k)} in {location}" for location, k in sorted(keys.items()))
    shared = len(set.intersection(*keys.values())) if len(keys) > 1 else 0
    lines = [f"Asset pages: {counted}; {shared} defined by two code locations. Months:"]
    for key in sorted(months):
        if key.split("/", 1)[-1] in SHOWN_ASSETS:
            lines.append(f"  {key:<30} {months[key] or 'never materialised'}")
    return "\n".join(lines)


def _wait_for_runs(home: Path, env: dict[str, str], territories, workers) -> dict:
    """Polls the instance until the expected runs have ended; prints them; what was found."""
    from synchro_dagster.defs.launch import failures
    from synchro_dagster.defs.runs import location_label

    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        instance = dg.DagsterInstance.get()
        deadline = time.monotonic() + DEMO_TIMEOUT
        while True:
            records = {
                t.name: instance.get_run_records(dg.RunsFilter(tags=location_label(t.location)))
                for t in territories
            }
            found = {
                name: {
                    r.dagster_run.job_name: r.dagster_run.status.value
                    for r in rs
                    if r.dagster_run.tags.get("synchro/origin") != "cli"
                }
                for name, rs in records.items()
            }
            if found == EXPECTED or time.monotonic() > deadline:
                break
            time.sleep(2)
        shown = [
            (name, r)
            for name, rs in records.items()
            for r in rs
            if r.dagster_run.tags.get("synchro/origin") != "cli"
        ]
        t0 = min((r.start_time or time.time() for _, r in shown), default=time.time())
        print(f"\n{'territory':<10} {'job':<13} {'status':<8} {'from':>5} {'to':>5}  executed by")
        for name, r in sorted(shown, key=lambda nr: (nr[0], nr[1].start_time or 0)):
            run = r.dagster_run
            by = executed_by(instance, run.run_id, workers)
            start, end = ((t or time.time()) - t0 for t in (r.start_time, r.end_time))
            when = f"{start:>4.0f}s {end:>4.0f}s"
            print(f"{name:<10} {run.job_name:<13} {run.status.value:<8} {when}  {by}")
            for step, message in failures(instance, run.run_id):
                print(f"{'':<12}{step}: {message.split('Failure: ', 1)[-1][:140]}")
        instance.dispose()
        return found
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
