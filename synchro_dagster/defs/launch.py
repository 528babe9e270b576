"""Runs launched the way the UI launches them: created in the instance with the job's origin in
the code location `workspace.yaml` loads, so that they appear on the job's pages and on the
home timeline (a run from `execute_in_process` has no origin and shows in neither).

The run executes here, in this process, on the definitions built from the caller's settings
(steps in order, as the `duckdb` pool allows anyway, by the definitions' executor: see runs.py);
its tag `synchro/pid` names this process, so that a later run can tell if it died.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping

import dagster as dg
from dagster._core.definitions.job_base import InMemoryJob
from dagster._core.definitions.reconstruct import ReconstructableRepository
from dagster._core.execution.api import execute_run
from dagster._core.remote_origin import (
    ManagedGrpcPythonEnvCodeLocationOrigin,
    RemoteJobOrigin,
    RemoteRepositoryOrigin,
)
from dagster._core.types.loadable_target_origin import LoadableTargetOrigin

from synchro_dagster.defs.runs import PID_TAG, REPOSITORY
from synchro_dagster.settings import DEFINITIONS_MODULE, Settings

MODULE = DEFINITIONS_MODULE  # the code location workspace.yaml loads
LOCATION = MODULE  # its name: Dagster names a python_module location after the module


def job_origin(job_name: str, location_name: str = LOCATION) -> RemoteJobOrigin:
    """The origin the webserver gives `job_name` in the workspace's code location (a
    territory's own on a shared instance: `Settings.location_name`)."""
    location = ManagedGrpcPythonEnvCodeLocationOrigin(
        LoadableTargetOrigin(executable_path=sys.executable, module_name=MODULE),
        location_name=location_name,
    )
    return RemoteRepositoryOrigin(location, REPOSITORY).get_job_origin(job_name)


def create_run(
    instance: dg.DagsterInstance,
    defs: dg.Definitions,
    job_name: str,
    partition_key: str | None = None,
    tags: Mapping[str, str] | None = None,
    run_config: Mapping[str, object] | None = None,
) -> dg.DagsterRun:
    """Creates the run with its origin, as the UI does; this process (`launch`) or the instance's
    run launcher (`instance.launch_run`) executes it."""
    settings: Settings = defs.resources["synchro"]
    job_def = defs.resolve_job_def(job_name)
    run_tags = {**job_def.run_tags, **(tags or {})}
    if partition_key is not None:
        run_tags.update(job_def.get_tags_for_partition_key(partition_key, None))
    code = ReconstructableRepository.for_module(MODULE, "defs").get_reconstructable_job(job_name)
    return instance.create_run_for_job(
        job_def,
        run_config=run_config or {},
        tags=run_tags,
        remote_job_origin=job_origin(job_name, settings.location_name),
        job_code_origin=code.get_python_origin(),
    )


def launch(
    instance: dg.DagsterInstance,
    defs: dg.Definitions,
    job_name: str,
    partition_key: str | None = None,
    tags: Mapping[str, str] | None = None,
    run_config: Mapping[str, object] | None = None,
) -> dg.DagsterRun:
    """Creates the run, executes it in this process, and returns it finished."""
    mine = {**(tags or {}), PID_TAG: str(os.getpid())}
    run = create_run(instance, defs, job_name, partition_key, mine, run_config)
    execute_run(InMemoryJob(defs.resolve_job_def(job_name)), run, instance)
    return instance.get_run_by_id(run.run_id)


def failures(instance: dg.DagsterInstance, run_id: str) -> list[tuple[str, str]]:
    """(step, error message) of every failed step of a run: the messages our assets write,
    which name files and rules, never a personal value."""
    records = instance.get_records_for_run(run_id, of_type=dg.DagsterEventType.STEP_FAILURE).records
    found = []
    for record in records:
        event = record.event_log_entry.dagster_event
        error = event.step_failure_data.error
        found.append((event.step_key, error.message.strip() if error else ""))
    return found
