"""Key rotation: the warehouse's tokens carried under a new key, without any value in clear.

Tokens are HMACs: they cannot be recomputed under a new key without the names and dates they
came from, which synchro never keeps. So a rotation appends a new key to the chain (the key file
then holds one key per line, oldest first) and replaces every stored token t by
HMAC(new, "rekey:" + t); ingestion computes the same chain on every new value
(`identity.tokens.keyed`). A new delivery then links to the same persons as before, and a copy
of an old key alone (a leaked backup, a former engineer's laptop) no longer matches anything in
the warehouse: the warehouse refuses it (its fingerprint changes with the chain).

What a rotation does not do: the old keys stay in the chain, needed to tokenise new deliveries.
Whoever holds the current key file holds every key; losing it loses every link (see README).
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass

import duckdb
import polars as pl

from synchro_dagster import warehouse
from synchro_dagster.identity.tokens import KEY_SEPARATOR, TOKEN_COLUMNS, key_chain, rekeyed
from synchro_dagster.ingest.store import check_key, key_fingerprint
from synchro_dagster.privacy import audit
from synchro_dagster.publish.snapshot import refresh_snapshot
from synchro_dagster.settings import KEY_ENV, Settings, private_dir, pseudonymisation_key

HEADER_HASH = " #"  # lineage.files.columns_unmapped: "column 7 #<12 hex of the title's hash>"


class RotationRefused(RuntimeError):
    """The rotation cannot run as asked: nothing was changed."""


@dataclass
class Rotation:
    keys: int  # keys in the chain now
    tables: int
    rows: int  # rows whose tokens changed
    values: int  # distinct values re-keyed (a token, a list of a row's header hashes)

    def counts(self) -> dict[str, int]:
        return {"keys": self.keys, "tables": self.tables, "rows": self.rows, "values": self.values}


def _rekey_value(key: bytes, value: str) -> str:
    """A stored token column's value (one token, or several separated by spaces, sorted as
    ingestion sorts them) under one more key."""
    return " ".join(sorted(rekeyed(key, t) for t in value.split()))


def _rekey_replacement(key: bytes, value: str) -> str:
    """privacy.subjects.replacement: a rectification's JSON, whose token values are re-keyed."""
    replacement = json.loads(value)
    for column, token in replacement.items():
        if column in TOKEN_COLUMNS and token:
            replacement[column] = _rekey_value(key, token)
    return json.dumps(replacement, sort_keys=True)


def _rekey_header(key: bytes, value: str) -> str:
    place, _, digest = value.rpartition(HEADER_HASH)
    return f"{place}{HEADER_HASH}{rekeyed(key, digest, len(digest))}"


def _rewrite(
    conn: duckdb.DuckDBPyConnection, table: str, column: str, change: Callable[[object], object]
) -> tuple[int, int]:
    """Replaces every value of `column` by `change(value)`: (rows changed, distinct values)."""
    old = [v for (v,) in conn.execute(f"SELECT DISTINCT {column} FROM {table}").fetchall()]
    old = [v for v in old if v]
    if not old:
        return 0, 0
    conn.register("_rekey", pl.DataFrame({"old": old, "new": [change(v) for v in old]}))
    try:
        (rows,) = conn.execute(
            f"SELECT count(*) FROM {table} SEMI JOIN _rekey ON {column} = old"
        ).fetchall()[0]
        conn.execute(
            f"UPDATE {table} SET {column} = _rekey.new FROM _rekey "
            f"WHERE {table}.{column} = _rekey.old"
        )
    finally:
        conn.unregister("_rekey")
    return rows, len(old)


def rotate(conn: duckdb.DuckDBPyConnection, key: bytes, new_key: bytes) -> Rotation:
    """Re-keys every token the warehouse holds under `new_key` and records the new chain's
    fingerprint, in the caller's transaction. `key` must be the warehouse's key."""
    check_key(conn, key, record=False)
    chain = key + KEY_SEPARATOR + new_key
    present = set(warehouse.existing_tables(conn))
    rows = values = tables = 0
    for spec in warehouse.catalogue():
        if spec.name not in present or not spec.tokens:
            continue
        warehouse.ensure(conn, spec.name)  # a token column declared since it was written: null
        tables += 1
        for column in spec.tokens:
            r, t = _rewrite(conn, spec.name, column, lambda v: _rekey_value(new_key, v))
            rows, values = rows + r, values + t
    if "privacy.subjects" in present:
        r, t = _rewrite(
            conn, "privacy.subjects", "replacement", lambda v: _rekey_replacement(new_key, v)
        )
        rows, values = rows + r, values + t
    if "lineage.files" in present:
        tables += 1
        r, t = _rewrite(
            conn,
            "lineage.files",
            "columns_unmapped",
            lambda headers: [_rekey_header(new_key, h) for h in headers],
        )
        rows, values = rows + r, values + t
    warehouse.ensure(conn, "lineage.key_fingerprint")
    conn.execute("DELETE FROM lineage.key_fingerprint")
    conn.execute(
        "INSERT INTO lineage.key_fingerprint VALUES (?, current_timestamp)",
        [key_fingerprint(chain)],
    )
    return Rotation(len(key_chain(chain)), tables, rows, values)


def rotate_key_file(settings: Settings, new_key: bytes | None = None) -> Rotation:
    """The rotation as `synchro key rotate` runs it: the new chain written beside the key file
    first, the warehouse re-keyed in one transaction (with its audit event), then the new file
    put in place of the old (mode 0600). A crash in between leaves `<key file>.new` holding
    the chain the warehouse was re-keyed with."""
    if KEY_ENV in os.environ:
        raise RotationRefused(
            f"{KEY_ENV} is set: a rotation writes the new key chain to the key file, which the "
            f"environment would then override. Move the key to {settings.key_file} (chmod 600), "
            f"unset {KEY_ENV}, and rotate again. Nothing was changed."
        )
    key = pseudonymisation_key(settings)
    new_key = new_key or secrets.token_hex(32).encode()
    target = settings.key_file
    pending = target.with_name(target.name + ".new")
    private_dir(target.parent)
    pending.unlink(missing_ok=True)
    fd = os.open(pending, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write((key + KEY_SEPARATOR + new_key).decode() + "\n")
    with warehouse.connect(settings.warehouse_path) as conn:
        conn.execute("BEGIN TRANSACTION")
        try:
            rotation = rotate(conn, key, new_key)
            audit.record(conn, settings, "key.rotation", rotation.counts())
            conn.execute("COMMIT")
        except Exception:
            conn.execute("ROLLBACK")
            pending.unlink()
            raise
        os.replace(pending, target)
        refresh_snapshot(conn, settings)  # its column-title hashes follow the new chain
    return rotation
