"""A delivery perturbed the way people perturb files stages to exactly the same content.

How the comparison is made: each rewrite records where every original row went
(`row_map`: original row number -> row number in the perturbed file). The staged
and quarantined frames of the original are renumbered through that map and must
then equal the perturbed file's frames on every column but the file's hash and
name. Comparing after mapping, rather than sorting both frames by their content,
also proves that each staged row_number still points at the same person (the
row's name and birth tokens travel with its new number), and that nothing
changed place between staging and quarantine.
"""

from __future__ import annotations

import shutil
from datetime import date, datetime
from pathlib import Path

import fastexcel
import pytest
from filekit import (
    Sheet,
    delivered,
    header_index,
    landing_folder,
    read_csv_rows,
    read_sheet,
    stage_file,
    strip_accents,
    without_provenance,
    write_csv_rows,
    write_ods,
    write_xlsx,
)
from polars.testing import assert_frame_equal

from synchro_dagster.ingest.stage import StagedMonth


def assert_same_content(
    original: Path, perturbed: Path, source: str, row_map: dict[int, int]
) -> StagedMonth:
    before, after = stage_file(original, source), stage_file(perturbed, source)
    assert after.staged.height > 0
    assert_frame_equal(without_provenance(after.staged), without_provenance(before.staged, row_map))
    assert_frame_equal(
        without_provenance(after.quarantine), without_provenance(before.quarantine, row_map)
    )
    return after


def place(tmp_path: Path, original: Path, source: str, name: str | None = None) -> Path:
    return landing_folder(tmp_path, source) / (name or original.name)


def csv_lines_unchanged(original: Path, encoding: str) -> dict[int, int]:
    """An export with one record per line: every row keeps its line number."""
    text = original.read_bytes().decode(encoding)
    assert "\n" not in text.replace("\r\n", "")  # no line break inside a field
    return {n: n for n in range(1, text.count("\r\n") + 2)}


# ----------------------------------------------------------------- (a) title rows
def test_title_rows_above_an_xlsx_header(territory, tmp_path):
    original = delivered(territory, "hebergement", "chrs_*")
    title: Sheet = [
        (None, ["Rapport mensuel transmis au SIAO"]),
        (None, ["Établi par le service social", None, "le 03/03/2025"]),
        (None, []),
        (None, [None, None, None]),
    ]
    row_map = write_xlsx(
        perturbed := place(tmp_path, original, "hebergement"), title + read_sheet(original)
    )
    assert set(new - old for old, new in row_map.items()) == {len(title)}
    after = assert_same_content(original, perturbed, "hebergement", row_map)
    assert after.files[0].header_row == header_index(read_sheet(original)) + 1 + len(title)


def test_title_rows_above_a_csv_header(territory, tmp_path):
    original = delivered(territory, "sne")
    text = original.read_bytes().decode("cp1252")
    title = "Extraction SNE du 01/03/2025\r\nDépartement 21 ; Côte-d'Or\r\n\r\n"
    perturbed = place(tmp_path, original, "sne")
    perturbed.write_bytes((title + text).encode("cp1252"))
    row_map = {n: n + 3 for n in csv_lines_unchanged(original, "cp1252")}
    assert_same_content(original, perturbed, "sne", row_map)


# ----------------------------------------------------------------- (b) columns shuffled
def test_columns_shuffled_in_a_workbook(territory, tmp_path):
    original = delivered(territory, "siao_urgence")
    sheet = read_sheet(original)
    width = max(len(r) for _, r in sheet)
    order = [(j * 5) % width for j in range(width)]
    assert sorted(order) == list(range(width)) and order != list(range(width))
    shuffled = [(n, [(r + [None] * width)[j] for j in order]) for n, r in sheet]
    row_map = write_xlsx(perturbed := place(tmp_path, original, "siao_urgence"), shuffled)
    assert_same_content(original, perturbed, "siao_urgence", row_map)


def test_columns_shuffled_in_a_csv(territory, tmp_path):
    original = delivered(territory, "siao_insertion")
    rows = read_csv_rows(original, "cp1252")
    order = list(reversed(range(len(rows[0]))))
    perturbed = write_csv_rows(
        place(tmp_path, original, "siao_insertion"), [[r[j] for j in order] for r in rows], "cp1252"
    )
    assert_same_content(
        original, perturbed, "siao_insertion", csv_lines_unchanged(original, "cp1252")
    )


# ----------------------------------------------------------------- (c) headers retyped
def messy(header: str, j: int) -> str:
    """Upper case without accents, first letter only, extra spaces, trailing punctuation."""
    bare = strip_accents(header)
    variants = (
        bare.upper(),
        bare.capitalize(),
        f"  {header.replace(' ', '   ')}  ",
        f"{header} :",
        f"{bare.lower()}.",
    )
    return variants[j % len(variants)]


def test_headers_recased_deaccented_and_respaced_in_a_csv(territory, tmp_path):
    original = delivered(territory, "siao_insertion")
    rows = read_csv_rows(original, "cp1252")
    header = [messy(h, j) for j, h in enumerate(rows[0])]
    forced = {
        "Date de naissance": "DATE DE NAISSANCE",
        "Prénom": "Prenom",
        "N° groupe": "N°. Groupe",
    }
    header = [forced.get(h, m) for h, m in zip(rows[0], header, strict=True)]
    assert {"DATE DE NAISSANCE", "Prenom", "N°. Groupe"} <= set(header)
    perturbed = write_csv_rows(
        place(tmp_path, original, "siao_insertion"), [header, *rows[1:]], "cp1252"
    )
    after = assert_same_content(
        original, perturbed, "siao_insertion", csv_lines_unchanged(original, "cp1252")
    )
    assert after.files[0].headers == stage_file(original, "siao_insertion").files[0].headers


def test_headers_recased_deaccented_and_respaced_in_a_workbook(territory, tmp_path):
    original = delivered(territory, "hebergement", "chu_*")
    sheet = read_sheet(original)
    h = header_index(sheet)
    number, header = sheet[h]
    sheet[h] = (number, [messy(c, j) if c else c for j, c in enumerate(header)])
    row_map = write_xlsx(perturbed := place(tmp_path, original, "hebergement"), sheet)
    assert_same_content(original, perturbed, "hebergement", row_map)


# ----------------------------------------------------------------- (d) encodings, delimiters
def test_utf8_csv_reencoded_to_cp1252(territory, tmp_path):
    original = delivered(territory, "syplo")
    assert original.read_bytes().startswith(b"\xef\xbb\xbf")  # SYPLO exports UTF-8 with a BOM
    rows = read_csv_rows(original, "utf-8-sig")
    perturbed = write_csv_rows(place(tmp_path, original, "syplo"), rows, "cp1252", ";")
    assert not perturbed.read_bytes().startswith(b"\xef\xbb\xbf")
    assert_same_content(original, perturbed, "syplo", csv_lines_unchanged(original, "utf-8-sig"))


def test_cp1252_csv_reencoded_to_utf8_bom_with_commas(territory, tmp_path):
    original = delivered(territory, "siao_insertion")
    rows = read_csv_rows(original, "cp1252")
    # a comma inside a cell (of a column the source does not read) forces quoting
    j = rows[0].index("Préconisation")
    rows = [rows[0]] + [r[:j] + [r[j] + ", à revoir"] + r[j + 1 :] for r in rows[1:]]
    perturbed = write_csv_rows(place(tmp_path, original, "siao_insertion"), rows, "utf-8-sig", ",")
    assert perturbed.read_bytes().startswith(b"\xef\xbb\xbf")
    assert ', à revoir"' in perturbed.read_bytes().decode("utf-8-sig")
    assert_same_content(
        original, perturbed, "siao_insertion", csv_lines_unchanged(original, "cp1252")
    )


def test_tab_delimited_csv(territory, tmp_path):
    original = delivered(territory, "sne")
    rows = read_csv_rows(original, "cp1252")
    perturbed = write_csv_rows(place(tmp_path, original, "sne"), rows, "utf-8", "\t")
    assert_same_content(original, perturbed, "sne", csv_lines_unchanged(original, "cp1252"))


# ----------------------------------------------------------------- (e) date forms
def test_date_cells_rewritten_as_text(territory, tmp_path):
    original = delivered(territory, "hebergement", "chu_*")  # entry, exit, birth: date cells
    sheet = read_sheet(original)
    assert any(isinstance(c, datetime) for _, r in sheet for c in r)
    as_text = [
        (n, [c.strftime("%d/%m/%Y") if isinstance(c, datetime) else c for c in r]) for n, r in sheet
    ]
    row_map = write_xlsx(perturbed := place(tmp_path, original, "hebergement"), as_text)
    assert_same_content(original, perturbed, "hebergement", row_map)


def test_date_time_cells_rewritten_as_text(territory, tmp_path):
    original = delivered(territory, "siao_urgence")  # request date and hour: date-time cells
    sheet = read_sheet(original)
    assert any(isinstance(c, datetime) and c.hour for _, r in sheet for c in r)
    as_text = [
        (n, [c.strftime("%d/%m/%Y %H:%M") if isinstance(c, datetime) else c for c in r])
        for n, r in sheet
    ]
    row_map = write_xlsx(perturbed := place(tmp_path, original, "siao_urgence"), as_text)
    assert_same_content(original, perturbed, "siao_urgence", row_map)


def test_text_dates_rewritten_as_excel_serials(territory, tmp_path):
    original = delivered(territory, "hebergement", "plateforme_hoteliere_*")  # text dates
    sheet = read_sheet(original)
    start = header_index(sheet) + 1

    def serial(value):
        try:
            d = datetime.strptime(value, "%d/%m/%Y").date()
        except (TypeError, ValueError):
            return value  # 31/02 stays as typed
        return (d - date(1899, 12, 30)).days

    rewritten = sheet[:start] + [(n, [serial(c) for c in r]) for n, r in sheet[start:]]
    assert any(isinstance(c, int) and c > 20000 for _, r in rewritten for c in r)
    row_map = write_xlsx(perturbed := place(tmp_path, original, "hebergement"), rewritten)
    assert_same_content(original, perturbed, "hebergement", row_map)


# ----------------------------------------------------------------- (f) OpenDocument
@pytest.mark.parametrize(("source", "pattern"), [("hebergement", "chu_*"), ("siao_urgence", "*")])
def test_xlsx_saved_as_ods(territory, tmp_path, source, pattern):
    original = delivered(territory, source, pattern)
    perturbed = place(tmp_path, original, source, original.with_suffix(".ods").name)
    row_map = write_ods(perturbed, read_sheet(original))
    with perturbed.open("rb") as f:
        assert f.read(38)[30:] == b"mimetype"  # first entry, stored: what identifies an ODF file
    grid = fastexcel.read_excel(str(perturbed)).load_sheet(0, header_row=None, dtypes="string")
    assert grid.height == len(read_sheet(original))
    assert_same_content(original, perturbed, source, row_map)


# ----------------------------------------------------------------- (g) blank rows, totals
def test_blank_rows_between_records_and_totals_lines(territory, tmp_path):
    original = delivered(territory, "accueils_jour", "accueil_jour_la_passerelle_*")
    sheet = read_sheet(original)
    start = header_index(sheet) + 1
    width = len(sheet[start - 1][1])
    spaced: Sheet = sheet[:start]
    for i, row in enumerate(sheet[start:]):
        spaced.append(row)
        if i % 5 == 2:
            spaced.append((None, [None] * width))
    spaced += [
        (None, []),
        (None, ["Sous-total semaine 9", *[None] * (width - 2), 12]),
        (None, ["TOTAL", None, None, None, None, None, None, 123][:width]),
        (None, ["Total général : 123 passages"]),
    ]
    row_map = write_xlsx(perturbed := place(tmp_path, original, "accueils_jour"), spaced)
    after = assert_same_content(original, perturbed, "accueils_jour", row_map)
    before = stage_file(original, "accueils_jour")
    assert after.files[0].rows_read == before.files[0].rows_read


# ----------------------------------------------------------------- (h) another sheet first
def test_an_unrelated_sheet_placed_first(territory, tmp_path):
    original = delivered(territory, "logement_accompagne")
    notes = {  # decoys that share a few column titles with the data sheet
        "Notes": [["Nom", "Téléphone"], ["Référente", "03 80 00 00 00"]],
        "Stats": [["Dispositif", "Entrée", "Total"], ["IML", 4, 12], ["Pension de famille", 1, 3]],
    }
    row_map = write_xlsx(
        perturbed := place(tmp_path, original, "logement_accompagne"), read_sheet(original), notes
    )
    after = assert_same_content(original, perturbed, "logement_accompagne", row_map)
    assert after.files[0].sheet == "Données"


@pytest.mark.parametrize("source", ["maraudes", "syplo"])
def test_file_copied_under_another_name_stages_the_same(territory, tmp_path, source):
    original = delivered(territory, source)
    copy = place(tmp_path, original, source, "copie de " + original.name)
    shutil.copyfile(original, copy)
    rows = {n: n for n in range(1, 100_000)}
    assert_same_content(original, copy, source, rows)


def test_assert_same_content_notices_a_changed_row(territory, tmp_path):
    """The comparison is not vacuous: a row pointing at another person fails it."""
    original = delivered(territory, "logement_accompagne")
    sheet = read_sheet(original)
    h = header_index(sheet)
    j = sheet[h][1].index("Prénom")
    a = sheet[h + 1][1]
    b = next(r for _, r in sheet[h + 2 :] if r[j] and r[j].upper() != a[j].upper())
    a[j], b[j] = b[j], a[j]
    row_map = write_xlsx(perturbed := place(tmp_path, original, "logement_accompagne"), sheet)
    with pytest.raises(AssertionError):
        assert_same_content(original, perturbed, "logement_accompagne", row_map)
