"""Every partner source stages the simulator's deliveries exactly as the truth says it should.

Each delivered data row is either staged or quarantined; the quarantined ones are
exactly the rows the simulator broke on purpose; staged rows carry their provenance
and nothing that reads as a name.
"""

from __future__ import annotations

import hashlib
import re
from datetime import date

import polars as pl
import pytest
from filekit import KEY, strip_accents

from synchro_dagster.ingest.stage import stage_month, staged_schema
from synchro_dagster.sources import all_sources, get

SOURCES = sorted(all_sources())
TOKEN = re.compile(r"^[0-9a-f]{32}( [0-9a-f]{32})*$")  # one keyed token, or several (typo forms)
SHA256 = re.compile(r"^[0-9a-f]{64}$")
# what each deliberate defect must be quarantined for
DEFECT_REASON = {
    "no_name": "no_identity",
    "impossible_date": "unparseable_date:birth_date",
    "unknown_code": "unknown_code:",  # the coded field depends on the partner's layout
}


def test_the_nine_partner_sources_are_declared():
    assert len(SOURCES) == 9


def test_every_source_delivers_in_the_simulated_territory(truth_records):
    assert set(truth_records["source"].unique()) == set(SOURCES)


def _words(text: str) -> str:
    """Upper case, no accents, words between single spaces: " MARIE CLAIRE " for "Marie-Claire"."""
    return " " + " ".join(re.findall(r"[A-Z]+", strip_accents(text).upper())) + " "


def _cleartext_names(persons: pl.DataFrame) -> set[str]:
    names = pl.concat(
        [persons[c] for c in ("first_name", "birth_last_name", "usage_last_name")]
    ).drop_nulls()
    return {_words(n) for n in names.unique().to_list() if len(n) >= 3}


@pytest.mark.parametrize("source_id", SOURCES)
def test_source_stages_its_delivered_months(source_id, territory, truth_records, truth_persons):
    source = get(source_id)
    landing = territory / "landing"
    truth = truth_records.filter(pl.col("source") == source_id)
    months = sorted(truth["month"].unique())
    delivered = sorted(
        date.fromisoformat(f"{p.parent.name}-01") for p in landing.glob(f"*/{source_id}")
    )
    assert months and delivered == months  # no month delivered without truth rows, nor the reverse
    names = _cleartext_names(
        truth_persons.filter(pl.col("person_id").is_in(truth["person_id"].implode()))
    )
    staged_total = 0
    for month in months:
        expected = truth.filter(pl.col("month") == month)
        result = stage_month(landing, source, month, KEY)
        files = {f.sha256: f.file_name for f in result.files}
        assert sorted(files.values()) == sorted(expected["file"].unique())
        for f in result.files:
            assert f.sha256 == hashlib.sha256((landing / f.file_name).read_bytes()).hexdigest()

        # every data row the truth lists is either staged or quarantined, once
        assert result.staged.height + result.quarantine.height == expected.height
        staged = _located(result.staged, files)
        quarantined = _located(result.quarantine, files)
        broken = expected.filter(pl.col("defect").is_not_null())
        assert _keys(quarantined) == _keys(broken)  # exactly the deliberately broken rows
        assert _keys(staged) == _keys(expected.filter(pl.col("defect").is_null()))
        assert not staged.select("file", "row_number").is_duplicated().any()
        for defect, reasons in (
            broken.join(quarantined, on=["file", "row_number"]).select("defect", "reasons").rows()
        ):
            assert any(r.startswith(DEFECT_REASON[defect]) for r in reasons), (defect, reasons)

        # provenance on every staged row
        assert result.staged.schema == staged_schema(source)
        assert result.staged["source"].unique().to_list() == [source_id]
        assert result.staged.schema["month"] == pl.Date
        assert result.staged["month"].unique().to_list() == [month] and month.day == 1
        assert result.staged["file_sha256"].str.contains(SHA256.pattern).all()
        assert result.staged["row_number"].min() >= 1
        staged_total += result.staged.height

        _assert_no_cleartext(result.staged, names)
    assert staged_total > 0


def _located(frame: pl.DataFrame, files: dict[str, str]) -> pl.DataFrame:
    """The frame with its file named as the truth names it (relative to the landing folder)."""
    return frame.with_columns(pl.col("file_sha256").replace_strict(files).alias("file"))


def _keys(frame: pl.DataFrame) -> set[tuple[str, int]]:
    return set(frame.select("file", "row_number").rows())


def _assert_no_cleartext(staged: pl.DataFrame, names: set[str]) -> None:
    """Token columns hold keyed hex only; no other text column holds a name of the territory."""
    for column, dtype in staged.schema.items():
        if dtype != pl.String:
            continue
        values = staged[column].drop_nulls().unique().to_list()
        if column.startswith("tok_") or column.endswith("_token"):
            assert all(TOKEN.match(v) for v in values), column
        elif column == "file_sha256":
            assert all(SHA256.match(v) for v in values)
        else:
            text = "|".join(
                _words(v) for v in values
            )  # a name is whole words, not "ION" in "INSTITUTION"
            assert not [n for n in names if n in text], column


def test_the_name_check_would_catch_a_name(truth_persons):
    """The cleartext check is not vacuous: a staged column holding a name fails it."""
    names = _cleartext_names(truth_persons)
    name = sorted(names)[0].strip()
    leaky = pl.DataFrame({"situation": ["RUE", f"{name.title()} (hébergé)"]})
    with pytest.raises(AssertionError):
        _assert_no_cleartext(leaky, names)


def test_staged_rows_point_at_the_truths_person(territory, truth_records):
    """The same person listed twice in a month is staged twice with the same name tokens."""
    month = date(2025, 2, 1)
    result = stage_month(territory / "landing", get("siao_urgence"), month, KEY)
    files = {f.sha256: f.file_name for f in result.files}
    staged = _located(result.staged, files).join(
        truth_records.filter(pl.col("noise").list.len() == 0),  # rows typed without noise
        on=["file", "row_number"],
    )
    per_person = staged.group_by("person_id").agg(pl.col("tok_name").n_unique(), pl.len())
    repeated = per_person.filter(pl.col("len") > 1)
    assert repeated.height > 0
    assert repeated["tok_name"].to_list() == [1] * repeated.height
