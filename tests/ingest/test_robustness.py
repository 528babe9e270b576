"""A delivery perturbed the way people perturb files stages to exactly the same content."""

from __future__ import annotations

import csv
import io
import shutil
import unicodedata
from datetime import date, datetime
from pathlib import Path

import polars as pl
import pytest
from conftest import KEY, MONTH, delivered, sheet_rows, write_ods, write_xlsx

from sources import get
from synchro_dagster.ingest.stage import stage_month

PROVENANCE = ["file_sha256", "row_number"]


def stage(path: Path, source: str) -> pl.DataFrame:
    landing = path.parents[2]
    result = stage_month(landing, get(source), MONTH, KEY, files=[path])
    assert result.staged.height > 0
    return result.staged


def content(staged: pl.DataFrame) -> pl.DataFrame:
    """What a delivery says, whatever its layout: every staged column but where a row sat."""
    body = staged.drop(PROVENANCE)
    return body.sort(body.columns, nulls_last=True)


def place(tmp_path: Path, original: Path, source: str, name: str | None = None) -> Path:
    folder = tmp_path / "landing" / MONTH.strftime("%Y-%m") / source
    folder.mkdir(parents=True, exist_ok=True)
    return folder / (name or original.name)


def assert_same(original: Path, perturbed: Path, source: str) -> pl.DataFrame:
    before, after = stage(original, source), stage(perturbed, source)
    assert content(after).equals(content(before))
    return after


def strip_accents(text: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFD", text) if unicodedata.category(c) != "Mn")


def header_index(rows: list[list]) -> int:
    return next(i for i, r in enumerate(rows) if sum(1 for c in r if c not in (None, "")) > 3)


def test_title_rows_above_an_xlsx_header(territory, tmp_path):
    original = delivered(territory, "hebergement", "chrs_*")
    rows = sheet_rows(original)
    title = [["Rapport mensuel transmis au SIAO"], ["Établi par le service"], [], ["", "", ""]]
    perturbed = write_xlsx(place(tmp_path, original, "hebergement"), title + rows)
    before, after = stage(original, "hebergement"), assert_same(original, perturbed, "hebergement")
    shift = after["row_number"].sort() - before["row_number"].sort()
    assert set(shift.to_list()) == {len(title)}  # every row keeps pointing at its person


def test_title_rows_above_a_csv_header(territory, tmp_path):
    original = delivered(territory, "sne")
    text = original.read_bytes().decode("cp1252")
    perturbed = place(tmp_path, original, "sne")
    perturbed.write_bytes(
        ("Extraction SNE du 01/03/2025\r\nDépartement 21\r\n\r\n" + text).encode("cp1252")
    )
    before, after = stage(original, "sne"), assert_same(original, perturbed, "sne")
    assert set((after["row_number"].sort() - before["row_number"].sort()).to_list()) == {3}


def test_columns_shuffled(territory, tmp_path):
    original = delivered(territory, "siao_urgence")
    rows = sheet_rows(original)
    width = max(len(r) for r in rows)
    order = [(j * 5) % width for j in range(width)]  # 5 is prime with 13 columns: a permutation
    assert sorted(order) == list(range(width))
    shuffled = [[(r + [None] * width)[j] for j in order] for r in rows]
    assert_same(
        original, write_xlsx(place(tmp_path, original, "siao_urgence"), shuffled), "siao_urgence"
    )


def test_headers_recased_deaccented_and_respaced(territory, tmp_path):
    original = delivered(territory, "siao_insertion")
    lines = original.read_bytes().decode("cp1252").split("\r\n")
    header = ";".join(
        "  " + strip_accents(h).upper().replace(" ", "  ") + " " for h in lines[0].split(";")
    )
    perturbed = place(tmp_path, original, "siao_insertion")
    perturbed.write_bytes("\r\n".join([header, *lines[1:]]).encode("cp1252"))
    assert_same(original, perturbed, "siao_insertion")


def _rewrite_csv(
    original: Path, perturbed: Path, encoding_in: str, encoding_out: str, delimiter: str
) -> None:
    rows = list(csv.reader(io.StringIO(original.read_bytes().decode(encoding_in)), delimiter=";"))
    out = io.StringIO()
    csv.writer(out, delimiter=delimiter, lineterminator="\r\n").writerows(rows)
    perturbed.write_bytes(out.getvalue().encode(encoding_out))


def test_utf8_csv_reencoded_to_cp1252(territory, tmp_path):
    original = delivered(territory, "syplo")
    perturbed = place(tmp_path, original, "syplo")
    _rewrite_csv(original, perturbed, "utf-8-sig", "cp1252", ";")
    assert not perturbed.read_bytes().startswith(b"\xef\xbb\xbf")
    assert_same(original, perturbed, "syplo")


def test_cp1252_csv_reencoded_to_utf8_bom_with_commas(territory, tmp_path):
    original = delivered(territory, "siao_insertion")
    perturbed = place(tmp_path, original, "siao_insertion")
    _rewrite_csv(original, perturbed, "cp1252", "utf-8-sig", ",")
    assert_same(original, perturbed, "siao_insertion")


def test_tab_delimited_csv(territory, tmp_path):
    original = delivered(territory, "sne")
    perturbed = place(tmp_path, original, "sne")
    _rewrite_csv(original, perturbed, "cp1252", "utf-8", "\t")
    assert_same(original, perturbed, "sne")


def test_date_cells_rewritten_as_text(territory, tmp_path):
    original = delivered(territory, "hebergement", "chu_*")  # entry, exit, birth: date cells
    rows = sheet_rows(original)
    assert any(isinstance(c, datetime) for r in rows for c in r)
    as_text = [[c.strftime("%d/%m/%Y") if isinstance(c, datetime) else c for c in r] for r in rows]
    assert_same(
        original, write_xlsx(place(tmp_path, original, "hebergement"), as_text), "hebergement"
    )


def test_text_dates_rewritten_as_excel_serials(territory, tmp_path):
    original = delivered(territory, "hebergement", "plateforme_hoteliere_*")  # text dates
    rows = sheet_rows(original)
    start = header_index(rows) + 1

    def serial(value):
        try:
            d = datetime.strptime(value, "%d/%m/%Y").date()
        except (TypeError, ValueError):
            return value
        return (d - date(1899, 12, 30)).days

    rewritten = rows[:start] + [[serial(c) for c in r] for r in rows[start:]]
    assert any(isinstance(c, int) and c > 20000 for r in rewritten for c in r)
    assert_same(
        original, write_xlsx(place(tmp_path, original, "hebergement"), rewritten), "hebergement"
    )


def test_xlsx_saved_as_ods(territory, tmp_path):
    original = delivered(territory, "hebergement", "chu_*")
    perturbed = place(tmp_path, original, "hebergement", original.with_suffix(".ods").name)
    assert_same(original, write_ods(perturbed, sheet_rows(original)), "hebergement")


def test_blank_rows_between_records_and_a_totals_line(territory, tmp_path):
    original = delivered(territory, "accueils_jour", "accueil_jour_la_passerelle_*")
    rows = sheet_rows(original)
    start = header_index(rows) + 1
    spaced = rows[:start]
    for i, row in enumerate(rows[start:]):
        spaced.append(row)
        if i % 7 == 3:
            spaced.append([None] * len(row))
    spaced += [[], ["TOTAL", None, None, None, None, None, 123]]  # a totals line, two cells
    spaced[-1] = ["Total général : 123 passages"]
    assert_same(
        original, write_xlsx(place(tmp_path, original, "accueils_jour"), spaced), "accueils_jour"
    )


def test_an_unrelated_sheet_placed_first(territory, tmp_path):
    original = delivered(territory, "logement_accompagne")
    rows = sheet_rows(original)
    notes = {
        "Notes": [["Nom du référent", "Téléphone"], ["Mme X", "03 80 00 00 00"]],
        "Stats": [["Dispositif", "Total"], ["IML", 12], ["Pension de famille", 3]],
    }
    perturbed = write_xlsx(place(tmp_path, original, "logement_accompagne"), rows, notes)
    assert_same(original, perturbed, "logement_accompagne")


@pytest.mark.parametrize("source", ["maraudes", "syplo"])
def test_file_copied_under_another_name_stages_the_same(territory, tmp_path, source):
    original = delivered(territory, source)
    copy = place(tmp_path, original, source, "copie de " + original.name)
    shutil.copyfile(original, copy)
    assert_same(original, copy, source)
