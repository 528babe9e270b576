"""The Dagster instance's event log on SQLite, its engines kept for the process.

Dagster's `SqliteEventLogStorage` builds a new SQLAlchemy engine for every event it writes or
reads (one SQLite file per run, plus the index file every asset and check event is copied
into) and throws it away after: each event pays the engine's creation, its dialect's set-up
and the compilation of its statements again. A metropole month writes about 230 events
(materialisations, 45 asset checks planned then evaluated, logs), 11-15 ms each on this
machine. This storage is the same in every other respect — the same files, tables, locks,
`NullPool` (no SQLite connection stays open between two events, so the UI, the daemon and the
runs share the files as before) — but keeps the last `ENGINES` engines of the process, so an
event reuses its file's engine and SQLAlchemy's compiled statements.

`templates/dagster.yaml` names it (`event_log_storage`), with the run and schedule storages
left at their defaults: the files are where `storage: sqlite` put them
(`DAGSTER_HOME/history/runs/`), so an existing instance keeps its history.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from dagster._config import StringSource
from dagster._core.storage.event_log.sqlite.sqlite_event_log import (
    SQLITE_BUSY_TIMEOUT_SECONDS,
    SqliteEventLogStorage,
)
from dagster._core.storage.sql import create_engine
from dagster._serdes import ConfigurableClassData
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.pool import NullPool

ENGINES = 16  # the index file, the running run's and the last ones the UI looked at


class EventLogStorage(SqliteEventLogStorage):
    """`SqliteEventLogStorage` under `DAGSTER_HOME/history/runs`, one engine per file and
    process (the `ENGINES` most recently used)."""

    def __init__(self, dagster_home: str, inst_data: ConfigurableClassData | None = None):
        self._engines: OrderedDict[tuple[int, str], Engine] = OrderedDict()
        super().__init__(str(Path(dagster_home) / "history" / "runs"), inst_data)

    @classmethod
    def config_type(cls):
        return {"dagster_home": StringSource}

    @classmethod
    def from_config_value(cls, inst_data, config_value) -> EventLogStorage:  # ty: ignore[invalid-method-override]
        return cls(inst_data=inst_data, **config_value)

    def _engine(self, shard: str) -> Engine:
        key = (os.getpid(), shard)  # an engine is never shared with a forked child
        engine = self._engines.pop(key, None)
        if engine is None:
            engine = create_engine(
                self.conn_string_for_shard(shard),
                poolclass=NullPool,
                connect_args={"timeout": SQLITE_BUSY_TIMEOUT_SECONDS},
            )
        self._engines[key] = engine
        while len(self._engines) > ENGINES:
            self._engines.popitem(last=False)[1].dispose()
        return engine

    @contextmanager
    def _connect(self, shard: str) -> Iterator[Connection]:
        with self._db_lock:
            engine = self._engine(shard)
            if shard not in self._initialized_dbs:
                self._initdb(engine)
                self._initialized_dbs.add(shard)
            with engine.connect() as conn, conn.begin():
                yield conn
