"""Rights requests on copies of the small territory (`ran`), for persons the simulator made.

Each request that changes data reruns only March (the persons chosen are first seen then).
"""

from __future__ import annotations

import json
import re
import stat
from datetime import date
from pathlib import Path

import duckdb
import openpyxl
import polars as pl
import pytest
from pipelinekit import KEY, copy, run

from synchro_dagster import warehouse
from synchro_dagster.cli import main
from synchro_dagster.identity.persons import RECORD_KEY, link_month, write_month
from synchro_dagster.ingest.read import read_table
from synchro_dagster.ingest.stage import stage_month
from synchro_dagster.privacy import audit, rights
from synchro_dagster.privacy.rules import Requests
from synchro_dagster.settings import Settings
from synchro_dagster.sources import all_sources

MARCH = date(2025, 3, 1)


@pytest.fixture(autouse=True)
def _key(monkeypatch):
    monkeypatch.setenv("SYNCHRO_PSEUDONYMISATION_KEY", KEY)
    monkeypatch.setenv("SYNCHRO_FIRST_MONTH", "2025-01")


def _truth(data: Path) -> tuple[pl.DataFrame, pl.DataFrame]:
    persons = pl.read_parquet(data / "truth" / "persons.parquet")
    records = pl.read_parquet(data / "truth" / "records.parquet").filter(pl.col("defect").is_null())
    return persons, records


def _newcomer(data: Path) -> dict:
    """The simulated person first seen in March with the most usable records."""
    persons, records = _truth(data)
    first = records.group_by("person_id").agg(pl.col("month").min(), pl.len())
    pid = first.filter(pl.col("month") == MARCH).sort("len", "person_id", descending=[True, False])
    return persons.filter(pl.col("person_id") == pid["person_id"][0]).row(0, named=True)


def _identity(person: dict) -> list[str]:
    last = person["usage_last_name"] or person["birth_last_name"]
    return ["--last-name", last, "--first-name", person["first_name"]]


def _rights(data: Path, command: str, *args: str) -> int:
    return main(["rights", command, "--data-dir", str(data), *args])


def _indicators(path: Path) -> list[tuple]:
    with duckdb.connect(str(path), read_only=True) as conn:
        return conn.execute("SELECT * FROM marts.indicators ORDER BY ALL").fetchall()


def _events(data: Path) -> list[audit.Event]:
    with duckdb.connect(str(Settings(data).warehouse_path), read_only=True) as conn:
        return audit.events(conn)


def test_access_exports_every_record_of_the_person_and_namesakes_are_never_guessed(
    ran, tmp_path, capsys
):
    data = copy(ran, tmp_path)
    person = _newcomer(data)
    _, truth = _truth(data)
    out = tmp_path / "export" / "demande"
    assert (
        _rights(data, "access", *_identity(person), "--out", str(out), "--request-id", "A-1") == 0
    )
    text = out.with_suffix(".json").read_text(encoding="utf-8")
    export = json.loads(text)
    held = {(r["Source"], r["Fichier"], r["Ligne du fichier"]) for r in export["Enregistrements"]}
    theirs = truth.filter(pl.col("person_id") == person["person_id"])
    assert held == set(theirs.select("source", "file", "row_number").iter_rows())
    assert export["Ménage par mois"] and export["Ménage par mois"][0]["Mois"] == "2025-03-01"
    assert set(openpyxl.load_workbook(out.with_suffix(".xlsx")).sheetnames) == set(export)
    assert {stat.S_IMODE(out.with_suffix(s).stat().st_mode) for s in (".xlsx", ".json")} == {0o600}
    # held as keyed tokens only, so not in the export: their names and birth date
    names = [person[k] for k in ("first_name", "birth_last_name", "usage_last_name") if person[k]]
    born = person["birth_date"]
    said = [*names, *((f"{born:%d/%m/%Y}", f"{born:%Y-%m-%d}") if born else ())]
    assert not [w for w in said if w.upper() in text.upper()]
    assert not re.search(r"\b[0-9a-f]{32}\b", text)
    assert f"{len(held)} enregistrement(s)" in capsys.readouterr().out

    # two persons of the simulator with the same name, born on other days
    persons, _ = _truth(data)
    named = persons.with_columns(
        pl.coalesce("usage_last_name", "birth_last_name").alias("last"),
    ).filter(pl.col("person_id").is_in(truth["person_id"].unique().implode()))
    pair = (
        named.group_by("last", "first_name")
        .agg(pl.col("person_id"), pl.col("birth_date"))
        .filter(pl.col("person_id").list.len() == 2)
        .sort("last")
        .row(0, named=True)
    )
    typed = ["--last-name", pair["last"], "--first-name", pair["first_name"]]
    assert _rights(data, "oppose", *typed) == rights.NAMESAKES
    listing = capsys.readouterr().err
    assert "Plusieurs personnes portent ce nom (2)" in listing and "--person N" in listing
    assert "  1. " in listing and "  2. " in listing and "tranche d'âge" in listing
    assert pair["last"] not in listing  # the identity typed is never echoed
    for choice in (["--person", "2"], ["--birth-date", str(pair["birth_date"][0])]):
        assert _rights(data, "access", *typed, *choice, "--out", str(tmp_path / "x")) == 0
    assert _rights(data, "access", *typed, "--person", "3", "--out", str(tmp_path / "x")) == 1
    kinds = [
        (e.kind, e.request_ref, e.counts["records"]) for e in _events(data) if e.kind != "snapshot"
    ]
    assert kinds == [
        ("rights.access", "A-1", len(held)),
        ("rights.access", None, kinds[1][2]),
        ("rights.access", None, kinds[2][2]),
    ]


def _never_delivered(data: Path, records: pl.DataFrame) -> None:
    """Blanks the person's rows in the landing files (a blank row is skipped, the other rows
    keep their numbers): the partners never sent them."""
    for (file,), rows in records.group_by("file"):
        path = data / "landing" / file
        numbers = set(rows["row_number"].to_list())
        if path.suffix == ".xlsx":
            book = openpyxl.load_workbook(path)
            for sheet in book.worksheets:
                for n in numbers:
                    for cell in sheet[n]:
                        cell.value = None
            book.save(path)
        else:
            lines = path.read_bytes().split(b"\n")
            separator = max(b";,\t", key=lambda s: lines[0].count(bytes([s])))
            for n in numbers:
                lines[n - 1] = bytes([separator]) * lines[0].count(bytes([separator]))
            path.write_bytes(b"\n".join(lines))


def test_oppose_removes_the_person_everywhere_as_if_never_delivered(ran, tmp_path, capsys):
    person = _newcomer(ran)
    _, truth = _truth(ran)
    theirs = truth.filter(pl.col("person_id") == person["person_id"])
    opposed = copy(ran, tmp_path / "opposed")
    assert _rights(opposed, "oppose", *_identity(person), "--request-id", "O-7") == 0
    said = capsys.readouterr().out
    assert f"Opposition appliquée : {theirs.height} enregistrement(s)" in said
    settings = Settings(opposed)
    left = rights.remaining(settings, _staged_rows(ran, theirs))
    assert left and set(left.values()) == {0}  # staging, links, provenance, snapshot
    assert "snapshot:core.provenance" in left
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as conn:
        (dropped,) = conn.execute("SELECT sum(rows_opposed) FROM lineage.files").fetchall()[0]
        subjects = conn.execute("SELECT DISTINCT action FROM privacy.subjects").fetchall()
        columns = conn.execute(
            "SELECT column_name || ' ' || data_type FROM information_schema.columns "
            "WHERE table_schema = 'privacy' AND table_name = 'subjects' ORDER BY ordinal_position"
        ).fetchall()
    declared = warehouse.table("privacy.subjects").columns
    assert [c for (c,) in columns] == [f"{c.name} {c.type}" for c in declared]
    assert (dropped, subjects) == (theirs.height, [("oppose",)])

    never = copy(ran, tmp_path / "never")
    _never_delivered(never, theirs)
    assert run(never, [MARCH]) == 0
    assert _indicators(settings.snapshot_path) == _indicators(Settings(never).snapshot_path)
    assert _indicators(settings.snapshot_path) != _indicators(Settings(ran).snapshot_path)
    for name in ("public/indicators.csv", "public/indicators.parquet"):  # handed to anyone
        published = settings.data_dir / "published" / name
        assert published.read_bytes() == (never / "published" / name).read_bytes(), name
    trail = "\n".join(p.read_text(encoding="utf-8") for p in settings.audit_dir.iterdir())
    told = {v.upper() for v in _identity(person)[1::2]}
    assert not [w for w in re.findall(r"[^\W\d_]+", trail.upper()) if w in told]

    # a later delivery naming them is staged without them, and a second oppose does nothing
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as conn:
        requests = Requests.load(conn)
    redelivered = {
        source: stage_month(
            settings.landing_dir, all_sources()[source], MARCH, KEY.encode(), requests=requests
        )
        for source in theirs["source"].unique().to_list()
    }
    assert sum(f.rows_opposed for r in redelivered.values() for f in r.files) == theirs.height
    capsys.readouterr()
    assert _rights(opposed, "oppose", *_identity(person), "--request-id", "O-7") == 0
    assert "Opposition déjà appliquée" in capsys.readouterr().out
    assert [(e.kind, e.counts["records"]) for e in _events(opposed) if e.kind != "snapshot"] == [
        ("rights.oppose", theirs.height),
        ("rights.oppose", 0),
    ]


def _staged_rows(data: Path, records: pl.DataFrame, keep: list[str] = ()) -> pl.DataFrame:
    """(source, file_sha256, row_number) of simulated records, from the registry of files."""
    with duckdb.connect(str(Settings(data).warehouse_path), read_only=True) as conn:
        files = conn.sql(
            "SELECT source, file_name AS file, sha256 AS file_sha256 FROM lineage.files"
        ).pl()
    return records.join(files, on=["source", "file"]).select(
        "source", "file_sha256", "row_number", *keep
    )


def test_limit_freezes_the_person_and_lift_gives_back_the_same_figures(ran, tmp_path, capsys):
    data = copy(ran, tmp_path)
    person = _newcomer(ran)
    snapshot = Settings(data).snapshot_path
    before = _indicators(snapshot)
    assert _rights(data, "limit", *_identity(person)) == 0
    limited = _indicators(snapshot)
    assert limited != before
    with duckdb.connect(str(Settings(data).warehouse_path), read_only=True) as conn:
        staged = conn.execute("SELECT count(*) FROM staging.siao_urgence").fetchall()
    with duckdb.connect(str(Settings(ran).warehouse_path), read_only=True) as conn:
        assert staged == conn.execute("SELECT count(*) FROM staging.siao_urgence").fetchall()
    assert _rights(data, "limit", *_identity(person)) == 0
    assert "Traitement déjà limité" in capsys.readouterr().out
    assert _indicators(snapshot) == limited
    assert _rights(data, "lift", *_identity(person)) == 0
    assert _indicators(snapshot) == before
    assert _rights(data, "lift", *_identity(person)) == 0
    assert "Aucune limitation en cours" in capsys.readouterr().out
    assert [e.kind for e in _events(data) if e.kind != "snapshot"] == [
        "rights.limit",
        "rights.limit",
        "rights.lift",
        "rights.lift",
    ]


def test_a_corrected_name_relinks_the_records_the_linkage_had_split(ran, tmp_path, capsys):
    data = copy(ran, tmp_path)
    persons, truth = _truth(ran)
    # a person, every record dated, one of whose records has a typo in the last name (the
    # latest person to arrive); the linkage joined it, as it now does: a "never" correction
    # between that spelling and the others (kept: the rectified record no longer has it),
    # months linked again, splits it off
    undated = pl.col("noise").list.set_intersection(
        ["missing_birth_date", "placeholder_birth_date", "age_instead_of_birth_date"]
    )
    mistyped = pl.col("noise").list.contains("typo_last_name")
    found = (
        truth.group_by("person_id")
        .agg(
            pl.col("month").min(),
            pl.len(),
            mistyped.sum().alias("mistyped"),
            undated.list.len().sum().alias("undated"),
        )
        .filter(pl.col("len") >= 2, pl.col("mistyped") == 1, pl.col("undated") == 0)
    )
    pid = found.sort("month", "person_id", descending=[True, False])["person_id"][0]
    person = persons.filter(pl.col("person_id") == pid).row(0, named=True)
    theirs = truth.filter(pl.col("person_id") == pid)
    source, file, row, month = (
        theirs.filter(mistyped).select("source", "file", "row_number", "month").row(0)
    )
    typed = read_table(data / "landing" / file, all_sources()[source]).frame
    typo = typed.filter(pl.col("row_number") == row)["last_name"][0]
    right = person["usage_last_name"] or person["birth_last_name"]
    assert typo.upper() != right
    keys = _staged_rows(ran, theirs).with_columns(rights._record_key())["record_key"]
    spelled = rights.Identity(typo, person["first_name"]).tokens(KEY.encode())["tok_name"]
    with warehouse.connect(Settings(data).warehouse_path) as conn:
        others = conn.execute(
            "SELECT DISTINCT tok_name FROM ("
            + " UNION ALL ".join(
                f"SELECT tok_name, {RECORD_KEY} AS record_key FROM {t}"
                for t in warehouse.existing_tables(conn, "staging")
            )
            + ") WHERE record_key IN ? AND tok_name <> ?",
            [keys.to_list(), spelled],
        ).fetchall()
        conn.executemany(
            "INSERT INTO identity.corrections (token_a, token_b, rule) VALUES (?, ?, 'never')",
            [(spelled, other) for (other,) in others],
        )
        for linked in sorted(truth["month"].unique()):
            if linked >= theirs["month"].min():
                write_month(conn, link_month(conn, linked))
        assert rights._current_persons(conn, keys)["person_id"].n_unique() == 2
    identity = ["--last-name", typo, "--first-name", person["first_name"]]
    identity += ["--birth-date", str(person["birth_date"])]
    fix = ["--set", f"last_name={right}"]
    assert _rights(data, "rectify", *identity, *fix, "--request-id", "R-3") == 0
    (after, before), *_ = re.findall(
        r"La personne qu'ils désignent compte (\d+) enregistrement\(s\) \(avant : (\d+)\)",
        capsys.readouterr().out,
    )
    assert (int(after), int(before)) == (keys.len(), 1)  # the two parts are one again
    with duckdb.connect(str(Settings(data).warehouse_path), read_only=True) as conn:
        assert rights._current_persons(conn, keys)["person_id"].n_unique() == 1
        stored = conn.execute("SELECT replacement FROM privacy.subjects").fetchall()
    assert typo.upper() not in str(stored).upper() and right not in str(stored).upper()
    # the same row delivered again is corrected at ingestion, before linkage
    (sha,) = _staged_rows(ran, theirs.filter(mistyped))["file_sha256"]
    with duckdb.connect(str(Settings(data).warehouse_path), read_only=True) as conn:
        requests = Requests.load(conn)
        (held,) = conn.execute(
            f"SELECT tok_name FROM staging.{source} WHERE row_number = ? AND file_sha256 = ?",
            [row, sha],
        ).fetchall()
    again = stage_month(
        Settings(data).landing_dir, all_sources()[source], month, KEY.encode(), requests=requests
    ).staged.filter(pl.col("row_number") == row, pl.col("file_sha256") == sha)
    assert again["tok_name"].to_list() == list(held)
    assert held == (rights.Identity(right, person["first_name"]).tokens(KEY.encode())["tok_name"],)
    assert _rights(data, "rectify", *identity, *fix) == 0
    assert "Déjà rectifié" in capsys.readouterr().out
    assert _rights(data, "rectify", *identity, "--set", "birth_date=1985-13-01") == 1


def test_an_opposition_finds_the_persons_quarantined_rows_in_the_files_again(ran):
    truth = pl.read_parquet(ran / "truth" / "records.parquet")
    rejected = truth.filter(pl.col("defect") == "unknown_code", pl.col("month") == MARCH)
    rejected = rejected.sort("person_id").head(1)
    persons, _ = _truth(ran)
    person = persons.filter(pl.col("person_id") == rejected["person_id"][0]).row(0, named=True)
    typed = rights.Identity(
        person["usage_last_name"] or person["birth_last_name"], person["first_name"]
    ).tokens(KEY.encode())
    settings = Settings(ran)
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as conn:
        requests = Requests.load(conn)
        (found,) = rights.candidates(conn, typed, requests)
        rows, unchecked = rights.quarantined_rows(
            conn, settings, KEY.encode(), requests.adding("oppose", found.records), found.records
        )
    expected = _staged_rows(ran, rejected)
    assert unchecked == 0
    assert rows.select(expected.columns).sort("source").rows() == expected.rows()


@pytest.mark.parametrize(
    ("field", "value"),
    [("birth_date", date(1985, 3, 2)), ("last_name", "Lefèvre"), ("first_name", "Jean-Marc")],
)
def test_a_rectification_replaces_every_token_its_field_changes(field, value):
    from dataclasses import replace

    from synchro_dagster.privacy.rules import FIELD_COLUMNS

    typed = rights.Identity("Martin", "Sophie", date(1985, 2, 3))
    before, after = (
        typed.tokens(KEY.encode()),
        replace(typed, **{field: value}).tokens(KEY.encode()),
    )
    changed = {column for column in before if before[column] != after[column]}
    assert changed and changed <= set(FIELD_COLUMNS[field])


@pytest.mark.parametrize("action", ["oppose", "rectify"])
def test_a_partner_number_shared_by_a_family_reaches_only_the_person(action):
    """A 115 request or a SI-SIAO demand numbers the household: the person's number, seen on
    a family member's row (another name, another birth date, or none), does not make that row
    the person's; on a row with the person's birth date it does (a name typed otherwise)."""
    rows = pl.DataFrame(
        {
            "record_token": ["R1", "R1", "R1", "R1", "R2"],
            "tok_name": ["amina", "amina-typo", "karim", "karim", "amina"],
            "tok_dob": ["d1", "d1", "d2", None, "d1"],
        }
    )
    person = rows.head(1)
    requests = Requests.empty().adding(action, person)
    request_id = requests.of(action)[0]
    assert requests.covers(rows, request_id).to_list() == [True, True, False, False, True]
