"""The GDPR register entry and the persons' notice follow the source modules and the settings."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from synchro_dagster.cli import generated_docs
from synchro_dagster.privacy import notices
from synchro_dagster.settings import Settings
from synchro_dagster.sources import all_sources
from synchro_dagster.sources.spec import FIELDS

DOCS = Path(__file__).parents[2] / "docs"


def test_committed_register_and_notice_are_what_synchro_docs_writes():
    for name, text in generated_docs().items():
        assert (DOCS / name).read_text(encoding="utf-8") == text, f"run `synchro docs`: {name}"


def test_every_source_and_every_field_a_source_sends_is_named(tmp_path):
    settings = Settings(data_dir=tmp_path)
    registre, notice = notices.registre(settings), notices.notice(settings)
    for source in all_sources().values():
        assert f"`{source.id}` — {source.label}" in registre and source.label in notice
        for field in source.columns:
            assert notices.FIELD_LABELS[field] in registre and notices.FIELD_LABELS[field] in notice
    assert set(notices.FIELD_LABELS) == set(FIELDS)  # a new canonical field needs its words


def test_a_new_source_appears_in_both_and_the_committed_files_are_then_stale(tmp_path, monkeypatch):
    before = generated_docs()
    sne = all_sources()["sne"]
    added = replace(sne, id="bailleurs", label="Bailleurs sociaux (essai)", partner="Bailleurs")
    monkeypatch.setattr(notices, "all_sources", lambda: {**all_sources(), "bailleurs": added})
    after = generated_docs()
    assert "`bailleurs` — Bailleurs sociaux (essai) | Bailleurs |" in after["registre.md"]
    assert "- Bailleurs sociaux (essai)" in after["notice.md"]
    assert "(10 sources)" in after["registre.md"]
    assert (
        after["registre.md"] != before["registre.md"] and after["notice.md"] != before["notice.md"]
    )


def test_durations_and_the_rights_contact_come_from_the_settings(tmp_path):
    settings = Settings(
        data_dir=tmp_path,
        retention_months=36,
        landing_retention_days=15,
        rights_contact="dpo@siao.example",
    )
    for text in (notices.registre(settings), notices.notice(settings)):
        assert "depuis 36 mois" in text and "15 jours" in text and "dpo@siao.example" in text
