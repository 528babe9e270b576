"""The only Dagster entry point (workspace.yaml loads it)."""

from synchro_dagster.defs import build_definitions
from synchro_dagster.settings import Settings

defs = build_definitions(Settings.from_env())
