"""Key rotation on the small territory: March delivered again after a rotation links to the same
persons as without it, the fingerprint follows the chain, and the old key alone is refused."""

from __future__ import annotations

from datetime import date

import pytest
from pipelinekit import KEY, copy

from synchro_dagster import warehouse
from synchro_dagster.cli import main
from synchro_dagster.identity.persons import IDENTITY_TABLES, link_month
from synchro_dagster.identity.tokens import keyed
from synchro_dagster.ingest.stage import stage_month, unused_column
from synchro_dagster.ingest.store import (
    WrongKeyError,
    check_key,
    key_fingerprint,
    write_source_month,
)
from synchro_dagster.privacy import audit
from synchro_dagster.privacy.keys import _rekey_header, _rekey_value
from synchro_dagster.settings import Settings, private_dir, pseudonymisation_key
from synchro_dagster.sources import all_sources

MARCH = date(2025, 3, 1)


def forget_march(path) -> None:
    """March as if not delivered yet: its staged rows, files and ids removed."""
    with warehouse.connect(path) as conn:
        for name in warehouse.existing_tables(conn):
            schema = name.split(".")[0]
            by_month = warehouse.table(name).by_month
            if by_month and (
                schema in ("staging", "quarantine")
                or name == "lineage.files"
                or (schema == "identity" and name.split(".")[1] in IDENTITY_TABLES)
            ):
                conn.execute(f"DELETE FROM {name} WHERE month = ?", [MARCH])


def deliver_march(data, key: bytes) -> dict[str, int]:
    """March staged and linked under `key`: record_key -> person_id."""
    with warehouse.connect(Settings(data_dir=data).warehouse_path) as conn:
        check_key(conn, key)
        for source in all_sources().values():
            write_source_month(conn, stage_month(data / "landing", source, MARCH, key), "t")
        links = link_month(conn, MARCH).links
    return dict(links.select("record_key", "person_id").iter_rows())


@pytest.fixture
def keyed_by_file(monkeypatch):
    monkeypatch.delenv("SYNCHRO_PSEUDONYMISATION_KEY", raising=False)
    monkeypatch.delenv("SYNCHRO_PSEUDONYMISATION_KEY_FILE", raising=False)


def test_after_rotation_a_new_delivery_links_to_the_same_persons(ran, tmp_path, keyed_by_file):
    plain, rotated = copy(ran, tmp_path / "plain"), copy(ran, tmp_path / "rotated")
    settings = Settings(data_dir=rotated)
    private_dir(settings.key_file.parent)
    settings.key_file.write_text(KEY + "\n", encoding="utf-8")
    for data in (plain, rotated):
        forget_march(Settings(data_dir=data).warehouse_path)
    with warehouse.read_only(settings.warehouse_path) as conn:
        (token,) = conn.execute("SELECT min(tok_name) FROM staging.sne").fetchall()[0]

    assert main(["key", "rotate", "--data-dir", str(rotated)]) == 0
    chain = pseudonymisation_key(settings)
    old, new = chain.split(b"\n")
    assert old == KEY.encode() and len(new) == 64
    assert settings.key_file.stat().st_mode & 0o777 == 0o600
    assert not settings.key_file.with_name(settings.key_file.name + ".new").exists()

    without = deliver_march(plain, KEY.encode())
    after = deliver_march(rotated, chain)
    assert len(after) > 500 and after == without  # same records, same person ids
    with warehouse.read_only(settings.warehouse_path) as conn:
        (known,) = conn.execute(
            "SELECT max(person_id) FROM identity.person_links WHERE month < ?", [MARCH]
        ).fetchall()[0]
    # linked to the persons of January and February through re-keyed tokens, not made anew
    assert sum(p <= known for p in after.values()) > 0.8 * len(after)
    with warehouse.read_only(settings.warehouse_path) as conn:
        tokens = {t for (t,) in conn.execute("SELECT tok_name FROM staging.sne").fetchall()}
        assert token not in tokens  # every stored token was re-keyed …
        (fingerprint,) = conn.execute("SELECT fingerprint FROM lineage.key_fingerprint").fetchall()[
            0
        ]
        assert fingerprint == key_fingerprint(chain) != key_fingerprint(KEY.encode())
        for alone in (old, new):  # … so that neither key alone matches: both are refused
            with pytest.raises(WrongKeyError):
                check_key(conn, alone, record=False)
        check_key(conn, chain, record=False)
        (event,) = [e for e in audit.events(conn) if e.kind == "key.rotation"]
    assert event.counts["keys"] == 2 and event.counts["rows"] > 1000
    assert keyed(chain, "name", "MARTIN") != keyed(old, "name", "MARTIN")


def test_a_rotated_token_is_the_token_ingestion_makes_under_the_chain():
    old, new = KEY.encode(), b"n" * 64
    chain = old + b"\n" + new
    assert _rekey_value(new, keyed(old, "name", "MARTIN")) == keyed(chain, "name", "MARTIN")
    typos = " ".join(sorted(keyed(old, "typo", v) for v in ("MRTIN", "MATIN")))
    assert _rekey_value(new, typos) == " ".join(
        sorted(keyed(chain, "typo", v) for v in ("MRTIN", "MATIN"))
    )
    header = unused_column(7, "Téléphone", old)
    assert _rekey_header(new, header) == unused_column(7, "Téléphone", chain) != header


def test_rotation_is_refused_with_the_key_in_the_environment(ran, tmp_path, monkeypatch, capsys):
    data = copy(ran, tmp_path)
    monkeypatch.setenv("SYNCHRO_PSEUDONYMISATION_KEY", KEY)
    assert main(["key", "rotate", "--data-dir", str(data)]) == 1
    assert "unset SYNCHRO_PSEUDONYMISATION_KEY" in capsys.readouterr().err
    with warehouse.read_only(Settings(data_dir=data).warehouse_path) as conn:
        check_key(conn, KEY.encode(), record=False)  # nothing changed
