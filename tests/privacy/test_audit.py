"""The audit trail: append-only table, rotating owner-only JSON-lines copy, `synchro audit`."""

from __future__ import annotations

import json
import re
import stat
from pathlib import Path

import polars as pl
import pytest

from synchro_dagster import warehouse
from synchro_dagster.cli import main
from synchro_dagster.privacy import audit
from synchro_dagster.settings import Settings

PACKAGE = Path(audit.__file__).parents[1]


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_an_event_goes_to_the_table_and_to_an_owner_only_file(tmp_path):
    settings = Settings(tmp_path)
    with warehouse.connect(settings.warehouse_path) as conn:
        audit.record(conn, settings, "rights.oppose", {"records": 7, "months": ["2025-01"]}, "R-1")
        audit.record(conn, settings, "retention", {"persons": 0})
        events = audit.events(conn)
    assert [(e.kind, e.request_ref, e.counts) for e in events] == [
        ("rights.oppose", "R-1", {"months": ["2025-01"], "records": 7}),
        ("retention", None, {"persons": 0}),
    ]
    assert events[0].actor == audit.os_user() != ""
    path = settings.audit_dir / audit.FILE_NAME
    lines = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    assert [(x["kind"], x["counts"]) for x in lines] == [(e.kind, e.counts) for e in events]
    assert (_mode(path), _mode(settings.audit_dir)) == (0o600, 0o700)


@pytest.mark.parametrize(
    ("counts", "ref"),
    [
        ({"name": "DUPONT"}, None),  # text other than a month or a date
        ({"tokens": ["a3f9c0d1"]}, None),
        ({"Bad Name": 1}, None),
        ({"birth_date": "1985-03-02"}, None),  # a whole date only as the day of a run
        ({"months": ["2025-03", "1985-03-02"]}, None),
        ({"records": 1}, "Jean Dupont"),  # a reference is a register number, never a name
        ({"records": 1}, "DUPONT"),
        ({"records": 1}, "Dupont-Jean"),
    ],
)
def test_nothing_but_counts_and_months_enters_the_trail(tmp_path, counts, ref):
    settings = Settings(tmp_path)
    with warehouse.connect(settings.warehouse_path) as conn:
        with pytest.raises(ValueError, match="audit counts|register"):
            audit.record(conn, settings, "rights.access", counts, ref)
        assert audit.events(conn) == []
    assert not (settings.audit_dir / audit.FILE_NAME).exists()


def test_the_file_rotates_by_size_and_keeps_a_few_parts(tmp_path):
    path = tmp_path / "events.jsonl"
    for i in range(10):
        audit.append_line(
            path, f'{{"n": {i}}}', max_bytes=18, keep=2
        )  # 9 bytes a line: two per file
    parts = [path, path.with_name("events.jsonl.1"), path.with_name("events.jsonl.2")]
    assert [p.read_text().split() for p in parts] == [
        ['{"n":', "8}", '{"n":', "9}"],
        ['{"n":', "6}", '{"n":', "7}"],
        ['{"n":', "4}", '{"n":', "5}"],
    ]
    assert not path.with_name("events.jsonl.3").exists()
    assert {_mode(p) for p in parts} == {0o600}


def test_the_table_is_append_only_and_retention_does_not_reach_it(tmp_path):
    with (
        warehouse.connect(tmp_path / "w.duckdb") as conn,
        pytest.raises(ValueError, match="append-only"),
    ):
        warehouse.replace_month(conn, None, {audit.TABLE: pl.DataFrame({"kind": ["x"]})})
    assert audit.TABLE not in {t.name for t in warehouse.personal_tables()}
    writes = re.compile(
        r"(DELETE\s+FROM|UPDATE|DROP\s+TABLE|TRUNCATE)\s+(IF\s+EXISTS\s+)?audit\.", re.IGNORECASE
    )
    code = [p for p in PACKAGE.rglob("*") if p.suffix in {".py", ".sql"}]
    assert [str(p) for p in code if writes.search(p.read_text(encoding="utf-8"))] == []


def test_synchro_audit_prints_the_trail(tmp_path, capsys):
    settings = Settings(tmp_path)
    with warehouse.connect(settings.warehouse_path) as conn:
        audit.record(conn, settings, "rights.limit", {"records": 3}, "DPO-2025-014")
    assert main(["audit", "--data-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "Opération" in out and "Demande" in out
    assert re.search(r"rights\.limit\s+DPO-2025-014\s+records=3", out)
    assert "1 événement(s)." in out
