"""The warehouse remembers which key made its tokens and refuses another."""

from __future__ import annotations

import duckdb
import pytest

from synchro_dagster.ingest.store import WrongKeyError, check_key, key_fingerprint

KEY, OTHER = b"k" * 32, b"o" * 32


def test_the_first_key_is_recorded_and_accepted_again():
    with duckdb.connect() as conn:
        check_key(conn, KEY)
        check_key(conn, KEY)
        rows = conn.execute("SELECT fingerprint FROM lineage.key_fingerprint").fetchall()
    assert rows == [(key_fingerprint(KEY),)]


def test_another_key_is_refused_with_what_to_do():
    with duckdb.connect() as conn:
        check_key(conn, KEY)
        with pytest.raises(WrongKeyError, match="another pseudonymisation key"):
            check_key(conn, OTHER)
        with pytest.raises(WrongKeyError, match="SYNCHRO_PSEUDONYMISATION_KEY"):
            check_key(conn, OTHER, record=False)


def test_the_fingerprint_is_not_the_key_and_a_read_only_check_records_nothing():
    assert KEY.decode() not in key_fingerprint(KEY) and key_fingerprint(KEY) != key_fingerprint(
        OTHER
    )
    with duckdb.connect() as conn:
        check_key(conn, KEY, record=False)  # a warehouse not built yet: nothing to compare
        tables = conn.execute("SELECT count(*) FROM information_schema.tables").fetchall()
    assert tables == [(0,)]
