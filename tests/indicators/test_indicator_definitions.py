"""Each indicator is defined once and documented from that definition."""

from __future__ import annotations

from pathlib import Path


def test_the_indicators_page_is_generated_from_the_definitions():
    from synchro_dagster.indicators.definitions import INDICATORS, markdown

    page = Path(__file__).parents[2] / "docs" / "indicators.md"
    assert page.read_text(encoding="utf-8") == markdown(), "run `synchro docs` and commit"
    assert len({i.name for i in INDICATORS}) == len(INDICATORS)
    for i in INDICATORS:
        assert f"## `{i.name}`" in page.read_text(encoding="utf-8") and i.definition
        assert (
            i.definition_fr in page.read_text(encoding="utf-8") and i.definition_fr != i.definition
        )
