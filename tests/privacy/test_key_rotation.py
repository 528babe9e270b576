"""Key rotation on the small territory: March delivered again after a rotation links to the same
persons as without it, an objection stored before it still drops the person's rows, no token held
before it is left anywhere in the warehouse, the fingerprint follows the chain, and the old key
alone is refused."""

from __future__ import annotations

import json
import re
from datetime import date

import polars as pl
import pytest
from pipelinekit import KEY, copy

from synchro_dagster import warehouse
from synchro_dagster.cli import main
from synchro_dagster.identity.persons import IDENTITY_TABLES, link_month
from synchro_dagster.identity.tokens import TOKEN_COLUMNS, keyed
from synchro_dagster.ingest.stage import stage_month, unused_column
from synchro_dagster.ingest.store import (
    WrongKeyError,
    check_key,
    key_fingerprint,
    write_source_month,
)
from synchro_dagster.privacy import audit, rights
from synchro_dagster.privacy.keys import HEADER_HASH, _rekey_header, _rekey_value
from synchro_dagster.privacy.rules import FIELD_COLUMNS, Requests, add_request
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
        (fingerprint,) = conn.execute("SELECT fingerprint FROM lineage.key_fingerprint").fetchall()[
            0
        ]
        assert fingerprint == key_fingerprint(chain) != key_fingerprint(KEY.encode())
        for alone in (old, new):  # every token re-keyed: neither key alone matches
            with pytest.raises(WrongKeyError):
                check_key(conn, alone, record=False)
        check_key(conn, chain, record=False)
        (event,) = [e for e in audit.events(conn) if e.kind == "key.rotation"]
    assert event.counts["keys"] == 2 and event.counts["rows"] > 1000
    assert keyed(chain, "name", "MARTIN") != keyed(old, "name", "MARTIN")


def held_tokens(conn) -> dict[str, set[str]]:
    """Every keyed token the warehouse holds, by `table.column`: the token columns the catalogue
    declares, the token values of the rectifications' replacements and the column-title hashes
    of lineage.files."""
    present = set(warehouse.existing_tables(conn))
    held = {
        f"{spec.name}.{column}": {
            t
            for (v,) in conn.execute(f"SELECT {column} FROM {spec.name}").fetchall()
            for t in (v or "").split()
        }
        for spec in warehouse.catalogue()
        if spec.name in present
        for column in spec.tokens
    }
    replacements = conn.execute(
        "SELECT replacement FROM privacy.subjects WHERE replacement IS NOT NULL"
    ).fetchall()
    held["privacy.subjects.replacement"] = {
        t
        for (v,) in replacements
        for column, tokens in json.loads(v).items()
        if column in TOKEN_COLUMNS
        for t in tokens.split()
    }
    held["lineage.files.columns_unmapped"] = {
        h.rpartition(HEADER_HASH)[2]
        for (headers,) in conn.execute("SELECT columns_unmapped FROM lineage.files").fetchall()
        for h in headers or ()
    }
    return held


def words_by_column(conn) -> dict[str, set[str]]:
    """The words of every text column of every table in the warehouse, declared or not, by
    `table.column`."""
    columns = conn.execute(
        "SELECT table_schema || '.' || table_name, column_name FROM information_schema.columns "
        "WHERE data_type LIKE 'VARCHAR%' AND table_catalog = current_database()"
    ).fetchall()
    return {
        f"{name}.{column}": {
            w
            for (v,) in conn.execute(f'SELECT DISTINCT "{column}"::VARCHAR FROM {name}').fetchall()
            for w in re.findall(r"\w+", v or "")
        }
        for name, column in columns
    }


def whole_persons_seen_in_march(conn, staged: pl.DataFrame, data) -> list[int]:
    """Persons linked with records in March whose staged records are every row the simulation
    made of one simulated person (none quarantined, none linked elsewhere) and whose names and
    partner record numbers (a 115 request lists every member under one number) no other
    person's records carry: an objection reaches exactly their rows. Most March rows first."""
    truth = pl.read_parquet(data / "truth" / "records.parquet").select(
        "source", "file", "row_number", pl.col("person_id").alias("simulated")
    )
    files = conn.sql("SELECT sha256 AS file_sha256, file_name AS file FROM lineage.files").pl()
    staged = (
        staged.join(
            rights._current_persons(conn, staged["record_key"]), on="record_key", how="left"
        )
        .join(files, on="file_sha256")
        .join(truth, on=["source", "file", "row_number"], how="left")
    )
    carriers = staged.group_by("tok_name").agg(pl.col("person_id").n_unique().alias("carriers"))
    numbered = staged.filter(pl.col("record_token").is_not_null())
    shared = numbered.group_by("record_token").agg(pl.col("person_id").n_unique().alias("n"))
    shared = numbered.join(shared.filter(pl.col("n") > 1), on="record_token")["person_id"]
    made = truth.group_by("simulated").len("made")
    persons = (
        staged.join(carriers, on="tok_name", how="left")
        .group_by("person_id")
        .agg(
            pl.len(),
            pl.col("simulated").n_unique().alias("simulated_persons"),
            pl.col("simulated").first(),
            (pl.col("carriers").fill_null(1) == 1).all().alias("names_alone"),
            (pl.col("month") == MARCH).sum().alias("march"),
        )
        .join(made, on="simulated")
        .filter(
            pl.col("person_id").is_not_null(),
            pl.col("simulated_persons") == 1,
            pl.col("len") == pl.col("made"),
            "names_alone",
            pl.col("march") > 0,
            ~pl.col("person_id").is_in(shared.implode()),
        )
    )
    return persons.sort("march", "person_id", descending=[True, False])["person_id"].to_list()


def test_after_rotation_requests_still_match_and_no_old_token_is_left(ran, tmp_path, keyed_by_file):
    data = copy(ran, tmp_path)
    settings = Settings(data_dir=data)
    private_dir(settings.key_file.parent)
    settings.key_file.write_text(KEY + "\n", encoding="utf-8")
    with warehouse.connect(settings.warehouse_path) as conn:
        staged = rights._staged(conn, "true", [])
        opposed, rectified = whole_persons_seen_in_march(conn, staged, data)[:2]
        theirs = rights._records_of_persons(conn, [opposed])
        add_request(conn, "oppose", theirs)  # as rights.oppose stores it
        corrected = rights.Identity("DURAND", "Lucie", date(1990, 5, 17)).tokens(KEY.encode())
        replacement = {c: corrected[c] for c in FIELD_COLUMNS["last_name"]}
        add_request(conn, "rectify", rights._records_of_persons(conn, [rectified]), replacement)
        a, b = staged["tok_name"].drop_nulls().unique().sort().head(2)
        conn.execute(
            "INSERT INTO identity.corrections (token_a, token_b, rule) VALUES (?, ?, 'never')",
            [a, b],
        )
        before = held_tokens(conn)
    kept = {place for place, tokens in before.items() if tokens}
    assert {
        *(f"privacy.subjects.{c}" for c in ("record_token", "tok_name", "tok_dob", "replacement")),
        "identity.corrections.token_a",
        "identity.corrections.token_b",
        "lineage.files.columns_unmapped",
    } <= kept
    assert {p.rpartition(".")[0] for p in kept} >= {f"staging.{s}" for s in staged["source"]}

    assert main(["key", "rotate", "--data-dir", str(data)]) == 0
    chain = pseudonymisation_key(settings)
    with warehouse.read_only(settings.warehouse_path) as conn:
        requests = Requests.load(conn)
        after = words_by_column(conn)
        hashes = "SELECT file_name, columns_unmapped FROM lineage.files ORDER BY ALL"
        held = conn.execute(hashes).fetchall()
    with warehouse.read_only(settings.snapshot_path) as snapshot:
        assert snapshot.execute(hashes).fetchall() == held  # the analysts' copy follows
    march = theirs.filter(pl.col("month") == MARCH)
    restaged = [
        stage_month(settings.landing_dir, all_sources()[s], MARCH, chain, requests=requests)
        for s in march["source"].unique().sort()
    ]
    assert march.height > 0
    assert sum(f.rows_opposed for r in restaged for f in r.files) == march.height
    # not one token held before the rotation is left, in the declared columns or elsewhere
    old = set().union(*before.values())
    assert sorted(place for place, words in after.items() if words & old) == []


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
