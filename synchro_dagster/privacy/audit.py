"""The audit trail: one event per operation on personal data, in `audit.events` and in a
rotating JSON-lines file under the data directory.

An event says what was done (`kind`), by whom (the OS user), when, for which request of the
SIAO's own register (`request_ref`) and how much (`counts`: numbers and months only). It never
holds an identity or a token of a person: the request reference is what links an event to the
person, in the register the SIAO keeps. The table is append-only (`warehouse.replace_month`
refuses it, nothing deletes from it, retention leaves it); the file is a copy for reading
without the warehouse, rotated by size, its oldest part dropped.
"""

from __future__ import annotations

import json
import os
import pwd
import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import duckdb

from synchro_dagster import warehouse
from synchro_dagster.settings import Settings, private_dir

TABLE = "audit.events"
FILE_NAME = "events.jsonl"
ROTATE_BYTES = 1_000_000  # a file this large is rotated before the next event
KEEP_FILES = 5  # events.jsonl.1 … .5 kept beside the current file

NAME = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z0-9_]+)*$")  # kinds and count names
# a register number: letters, digits, . _ / -, with at least one digit (a surname has none)
REQUEST_REF = re.compile(r"^(?=.*\d)[A-Za-z0-9][A-Za-z0-9._/-]{0,39}$")
MONTH = re.compile(r"^\d{4}-\d{2}$")
DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
DAY_COUNTS = ("today",)  # the one count that is a whole date: the day a job ran for

Count = int | float | str | list[str]


@dataclass(frozen=True)
class Event:
    recorded_at: datetime
    kind: str
    actor: str
    request_ref: str | None
    counts: dict[str, Count]

    def line(self) -> str:
        return json.dumps(
            {
                "recorded_at": self.recorded_at.astimezone().isoformat(timespec="seconds"),
                "kind": self.kind,
                "actor": self.actor,
                "request_ref": self.request_ref,
                "counts": self.counts,
            },
            ensure_ascii=False,
            sort_keys=True,
        )


def os_user() -> str:
    """The account running the process (not $USER, which anyone may set)."""
    return pwd.getpwuid(os.geteuid()).pw_name


def record(
    conn: duckdb.DuckDBPyConnection,
    settings: Settings,
    kind: str,
    counts: dict[str, Count],
    request_ref: str | None = None,
) -> Event:
    """Appends one event to `audit.events` (on `conn`, inside the caller's transaction if any)
    and to the JSON-lines file. `counts` holds numbers, months (YYYY-MM) and lists of them,
    and the day of a run (`today`): no other text, so no identity or token can slip in."""
    event = Event(
        datetime.now(),
        _checked_kind(kind),
        os_user(),
        checked_ref(request_ref),
        _checked_counts(counts),
    )
    warehouse.ensure(conn, TABLE)
    conn.execute(
        f"INSERT INTO {TABLE} VALUES (?, ?, ?, ?, ?)",
        [
            event.recorded_at,
            event.kind,
            event.actor,
            event.request_ref,
            json.dumps(event.counts, sort_keys=True),
        ],
    )
    append_line(private_dir(settings.audit_dir) / FILE_NAME, event.line())
    return event


def events(conn: duckdb.DuckDBPyConnection) -> list[Event]:
    """Every event, oldest first (none if the trail was never written)."""
    if TABLE not in warehouse.existing_tables(conn, "audit"):
        return []
    rows = conn.execute(
        f"SELECT recorded_at, kind, actor, request_ref, counts FROM {TABLE} ORDER BY recorded_at"
    ).fetchall()
    return [
        Event(at, kind, actor, ref, json.loads(counts)) for at, kind, actor, ref, counts in rows
    ]


def append_line(
    path: Path, line: str, max_bytes: int = ROTATE_BYTES, keep: int = KEEP_FILES
) -> None:
    """Appends `line` to `path` (created 0600), first rotating it when it holds `max_bytes`:
    path -> path.1 -> … -> path.<keep>, the oldest dropped."""
    if path.exists() and path.stat().st_size >= max_bytes:
        for i in range(keep - 1, 0, -1):
            older = path.with_name(f"{path.name}.{i}")
            if older.exists():
                older.replace(path.with_name(f"{path.name}.{i + 1}"))
        path.replace(path.with_name(f"{path.name}.1"))
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    with os.fdopen(fd, "a", encoding="utf-8") as f:
        f.write(line + "\n")


def _checked_kind(kind: str) -> str:
    if not NAME.match(kind):
        raise ValueError(f"audit kind {kind!r}: lower-case words joined by '.', e.g. rights.oppose")
    return kind


def checked_ref(ref: str | None) -> str | None:
    if ref is not None and not REQUEST_REF.match(ref):
        raise ValueError(
            "The request reference must be the SIAO register's number (letters, digits, . _ / -, "
            "at least one digit, at most 40 characters, no space), never a name: e.g. DPO-2025-014"
        )
    return ref


def _checked_counts(counts: dict[str, Count]) -> dict[str, Count]:
    def allowed(name: str, value: object) -> bool:
        if isinstance(value, bool | int | float):
            return True
        if isinstance(value, str):  # a whole date could be a birth date: "today" only
            return bool(MONTH.match(value) or (name in DAY_COUNTS and DAY.match(value)))
        return isinstance(value, list) and all(isinstance(v, str) and MONTH.match(v) for v in value)

    refused = sorted(
        name for name, value in counts.items() if not NAME.match(name) or not allowed(name, value)
    )
    if refused:
        raise ValueError(
            f"audit counts {', '.join(refused)}: a count is a number or months/dates "
            "(YYYY-MM[-DD]) under a lower-case name; no other text goes into the audit trail"
        )
    return dict(counts)


def table_lines(events: list[Event]) -> list[str]:
    """The trail as the DPO reads it: one line per event, French column names."""
    header = (
        f"{'Date et heure':<19}  {'Utilisateur':<12}  {'Opération':<22}  {'Demande':<16}  Chiffres"
    )
    lines = [header, "-" * len(header)]
    for e in events:
        counts = ", ".join(
            f"{k}={'/'.join(v) if isinstance(v, list) else v}" for k, v in sorted(e.counts.items())
        )
        lines.append(
            f"{e.recorded_at:%Y-%m-%d %H:%M:%S}  {e.actor:<12}  {e.kind:<22}  "
            f"{e.request_ref or '-':<16}  {counts}"
        )
    return lines
