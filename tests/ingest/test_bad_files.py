"""The bad-file corpus: each broken delivery is refused with a clear error, or has its broken
rows quarantined with their reason, or stages with a WARN check giving numbers, or is read
correctly — and nothing else changes.

A file-level problem names the file, the column when one is concerned, and says
what the partner should do; a row problem sends exactly the broken row(s) to
quarantine with their reason codes and stages every other row. Neither ever
repeats a cell value: the names of the rows concerned appear in no message and
no quarantine column.

"Nothing else changed" is checked on a warehouse: January and February of every source of the
test territory are ingested once per module; each case ingests its delivery into a copy of it
(`ingest_source_month`, what the staging asset runs), and every (table, source, month) of
staging, quarantine and lineage is compared by row count and a hash of its rows. A refusal
changes only `lineage.refusals` for its source-month; any other outcome only the source-month's
staging, quarantine and `lineage.files`.
"""

from __future__ import annotations

import re
import shutil
import zipfile
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import cache
from pathlib import Path

import duckdb
import openpyxl
import polars as pl
import pytest
import xlwt
from filekit import (
    KEY,
    MONTH,
    Sheet,
    delivered,
    header_index,
    landing_folder,
    read_csv_rows,
    read_sheet,
    stage_file,
    without_provenance,
    write_csv_rows,
    write_ods,
    write_xlsx,
)
from polars.testing import assert_frame_equal

from synchro_dagster import warehouse
from synchro_dagster.ingest.checks import staging_checks
from synchro_dagster.ingest.errors import FileRejected
from synchro_dagster.ingest.stage import StagedMonth
from synchro_dagster.ingest.store import ingest_source_month, unchanged_delivery
from synchro_dagster.publish.feedback import refusal_reason
from synchro_dagster.sources import all_sources, get

CSV_ENCODING = {"sne": "cp1252", "siao_insertion": "cp1252", "syplo": "utf-8-sig"}
JANUARY = date(2025, 1, 1)
MAX_REJECTION_RATE = 0.2  # the territory breaks 2 % of rows on purpose, in every way it knows:
# a small source (24 SYPLO rows) passes 5 %; each quarantine case breaks one more row
NAME_HEADERS = {"Nom", "Prénom", "NOM", "PRENOM", "nom", "prenom", "NOM Prénom", "Nom d'usage"}


@dataclass
class Built:
    path: Path
    broken_rows: list[int] = field(default_factory=list)  # row numbers a person would look at
    secrets: set[str] = field(default_factory=set)  # cell values no message may repeat


@dataclass
class Case:
    source: str
    build: Callable[[Path, Path], Built]  # (territory, landing folder) -> the bad file
    problem: str | None = None  # FileRejected problem code expected
    column: str | None = None  # the column the message must name
    reasons: list[str] | None = None  # the broken row's exact quarantine reasons
    warn: tuple[str, dict] | None = None  # WARN check failing, and figures of its metadata
    accepted: bool = False  # read correctly: stages exactly what the original file stages
    month: date = MONTH  # the month the delivery is dropped for
    detail: str | None = None  # a pattern the message's detail must match (figures, names)

    @property
    def outcome(self) -> str:
        if self.problem:
            return "refused"
        if self.reasons:
            return "quarantined"
        return "warned" if self.warn else "accepted"


# --------------------------------------------------------------- tables, whatever the format
def load(path: Path, source: str) -> Sheet:
    if path.suffix == ".csv":
        rows = read_csv_rows(path, CSV_ENCODING[source])
        return [(i, r) for i, r in enumerate(rows, start=1)]  # one record per line
    return read_sheet(path)


def save(sheet: Sheet, path: Path, source: str) -> Path:
    if path.suffix == ".csv":
        return write_csv_rows(path, [r for _, r in sheet], CSV_ENCODING[source])
    write_xlsx(path, sheet)
    return path


def names_in(sheet: Sheet, rows: Sheet | None = None) -> set[str]:
    header = sheet[header_index(sheet)][1]
    columns = [j for j, h in enumerate(header) if h in NAME_HEADERS]
    rows = sheet[header_index(sheet) + 1 :] if rows is None else rows
    return {str(r[j]) for _, r in rows for j in columns if j < len(r) and r[j]}


@cache
def staged_original(original: Path, source: str) -> StagedMonth:
    return stage_file(original, source)


def staged_rows(original: Path, source: str) -> frozenset[int]:
    return frozenset(staged_original(original, source).staged["row_number"])


# --------------------------------------------------------------- builders
def raw(name: str, data: bytes) -> Callable[[Path, Path], Built]:
    def build(_territory: Path, folder: Path) -> Built:
        (folder / name).write_bytes(data)
        return Built(folder / name)

    return build


def truncated(source: str, pattern: str) -> Callable[[Path, Path], Built]:
    def build(territory: Path, folder: Path) -> Built:
        data = (original := delivered(territory, source, pattern)).read_bytes()
        (folder / original.name).write_bytes(data[: len(data) // 2])
        return Built(folder / original.name)

    return build


def copied(
    source: str, name: str | None = None, month: date = MONTH
) -> Callable[[Path, Path], Built]:
    def build(territory: Path, folder: Path) -> Built:
        original = delivered(territory, source, month=month)
        path = Path(shutil.copyfile(original, folder / (name or original.name)))
        return Built(path, secrets=names_in(load(original, source)) if name is None else set())

    return build


def edited(
    source: str, pattern: str, edit: Callable[[Sheet, int], Sheet]
) -> Callable[[Path, Path], Built]:
    """The delivery with its table edited as a whole; `edit` gets the table and the header's
    position. Every name of the original counts as a secret."""

    def build(territory: Path, folder: Path) -> Built:
        original = delivered(territory, source, pattern)
        sheet = load(original, source)
        path = save(edit(sheet, header_index(sheet)), folder / original.name, source)
        return Built(path, secrets=names_in(sheet))

    return build


def one_row(source: str, pattern: str, **changes: object) -> Callable[[Path, Path], Built]:
    """The delivery with its first well-formed (staged) row broken: {column title: value}."""

    def build(territory: Path, folder: Path) -> Built:
        original = delivered(territory, source, pattern)
        sheet = load(original, source)
        h = header_index(sheet)
        header = sheet[h][1]
        good = staged_rows(original, source)
        number, row = next((n, r) for n, r in sheet[h + 1 :] if n in good)
        secrets = names_in(sheet, [(number, row)])
        for title, value in changes.items():
            row[header.index(title)] = value
        return Built(save(sheet, folder / original.name, source), [number], secrets)

    return build


def drop_column(title: str) -> Callable[[Sheet, int], Sheet]:
    def edit(sheet: Sheet, h: int) -> Sheet:
        j = sheet[h][1].index(title)
        return [(n, r[:j] + r[j + 1 :]) for n, r in sheet]

    return edit


def rename_column(title: str, new: str) -> Callable[[Sheet, int], Sheet]:
    def edit(sheet: Sheet, h: int) -> Sheet:
        sheet[h][1][sheet[h][1].index(title)] = new
        return sheet

    return edit


def data_only(sheet: Sheet, h: int) -> Sheet:
    return sheet[h + 1 :]


def header_then(*extra: list) -> Callable[[Sheet, int], Sheet]:
    def edit(sheet: Sheet, h: int) -> Sheet:
        return sheet[: h + 1] + [(None, list(r)) for r in extra]

    return edit


def unclosed_quote_csv(territory: Path, folder: Path) -> Built:
    original = delivered(territory, "sne")
    lines = original.read_bytes().decode("cp1252").split("\r\n")
    fields = lines[3].split(";")
    fields[3] = '"' + fields[3]  # an opening quote never closed
    lines[3] = ";".join(fields)
    path = folder / original.name
    path.write_bytes("\r\n".join(lines).encode("cp1252"))
    return Built(path, secrets=names_in(load(original, "sne")))


def unrelated_workbook(_territory: Path, folder: Path) -> Built:
    path = folder / "planning_equipe.xlsx"
    sheet: Sheet = [(1, ["Planning des permanences"]), (2, ["Lundi", "Mardi", "Mercredi"])]
    write_xlsx(path, sheet, {"Contacts": [["Référent", "Téléphone"], ["M. Durand", "0380"]]})
    return Built(path, secrets={"M. Durand"})


def every_date(edit: Callable[[date], str], *titles: str) -> Callable[[Sheet, int], Sheet]:
    """Every dd/mm/yyyy date of the `titles` columns written again by `edit`."""

    def rewrite(value: object) -> object:
        try:
            return edit(datetime.strptime(str(value), "%d/%m/%Y").date())
        except ValueError:
            return value

    def apply(sheet: Sheet, h: int) -> Sheet:
        columns = [sheet[h][1].index(t) for t in titles]
        for _, row in sheet[h + 1 :]:
            for j in columns:
                row[j] = rewrite(row[j])
        return sheet

    return apply


def recode(title: str, codes: dict[str, str]) -> Callable[[Sheet, int], Sheet]:
    def edit(sheet: Sheet, h: int) -> Sheet:
        j = sheet[h][1].index(title)
        for _, row in sheet[h + 1 :]:
            row[j] = codes.get(row[j], row[j])
        return sheet

    return edit


def blank(*titles: str) -> Callable[[Sheet, int], Sheet]:
    def edit(sheet: Sheet, h: int) -> Sheet:
        for title in titles:
            j = sheet[h][1].index(title)
            for _, row in sheet[h + 1 :]:
                row[j] = ""
        return sheet

    return edit


def as_formulas(*titles: str) -> Callable[[Sheet, int], Sheet]:
    """Name cells turned into formulas that a program writes without their results."""

    def edit(sheet: Sheet, h: int) -> Sheet:
        for title in titles:
            j = sheet[h][1].index(title)
            for n, row in sheet[h + 1 :]:
                row[j] = f'=UPPER("ligne {n}")'
        return sheet

    return edit


def every_row_twice(sheet: Sheet, h: int) -> Sheet:
    return sheet[: h + 1] + [(n, list(r)) for n, r in sheet[h + 1 :] for _ in range(2)]


def first_rows(count: int) -> Callable[[Sheet, int], Sheet]:
    def edit(sheet: Sheet, h: int) -> Sheet:
        return sheet[: h + 1 + count]

    return edit


def add_column(title: str) -> Callable[[Sheet, int], Sheet]:
    def edit(sheet: Sheet, h: int) -> Sheet:
        return [(n, [*r, title if i == h else "x"]) for i, (n, r) in enumerate(sheet)]

    return edit


def reencoded(source: str, encoding: str, delimiter: str = ";", name: str | None = None):
    """The CSV delivery written again in another encoding, delimiter or under another name."""

    def build(territory: Path, folder: Path) -> Built:
        original = delivered(territory, source)
        rows = read_csv_rows(original, CSV_ENCODING[source])
        path = write_csv_rows(folder / (name or original.name), rows, encoding, delimiter)
        return Built(path, secrets=names_in(load(original, source)))

    return build


def rewritten(source: str, pattern: str, write: Callable[[Path, Sheet], Path]):
    """The workbook delivery's data sheet written again by `write(folder, sheet)`."""

    def build(territory: Path, folder: Path) -> Built:
        original = delivered(territory, source, pattern)
        sheet = load(original, source)
        return Built(write(folder / original.name, sheet), secrets=names_in(sheet))

    return build


def template_first(path: Path, sheet: Sheet) -> Path:
    header = sheet[header_index(sheet)][1]
    write_xlsx(path, sheet, {"Modèle": [["Modèle à remplir"], header, ["EXEMPLE", "Exemple"]]})
    return path


def split_in_two(path: Path, sheet: Sheet) -> Path:
    h = header_index(sheet)
    half = h + 1 + (len(sheet) - h - 1) // 2
    rest = [sheet[h][1]] + [r for _, r in sheet[half:]]
    write_xlsx(path, sheet[:half], sheets_after={"Suite": rest})
    return path


def as_xls(path: Path, sheet: Sheet) -> Path:
    """The old Excel 97-2003 format, as a partner's old spreadsheet saves it."""
    book = xlwt.Workbook()
    ws = book.add_sheet("Feuil1")
    for i, (_, row) in enumerate(sheet):
        for j, value in enumerate(row):
            if isinstance(value, datetime):
                value = value.strftime("%d/%m/%Y")
            if value not in (None, ""):
                ws.write(i, j, value)
    book.save(str(path.with_suffix(".xls")))
    return path.with_suffix(".xls")


def stray_cell(path: Path, sheet: Sheet) -> Path:
    """One cell typed far away: the sheet's extent becomes A1:XFD1048576."""
    write_xlsx(path, sheet)
    book = openpyxl.load_workbook(path)
    book["Données"]["XFD1048576"] = "x"
    book.save(path)
    return path


def stray_cell_ods(path: Path, sheet: Sheet) -> Path:
    """The same in OpenDocument: one cell at the last row and column LibreOffice allows."""
    path = path.with_suffix(".ods")
    write_ods(path, sheet)
    with zipfile.ZipFile(path) as z:
        members = {name: z.read(name) for name in z.namelist()}
    far = (
        '<table:table-row table:number-rows-repeated="1048000"><table:table-cell/>'
        "</table:table-row><table:table-row><table:table-cell table:number-columns-repeated="
        '"16383"/><table:table-cell office:value-type="string"><text:p>x</text:p>'
        "</table:table-cell></table:table-row></table:table>"
    )
    members["content.xml"] = members["content.xml"].replace(b"</table:table>", far.encode())
    with zipfile.ZipFile(path, "w") as z:
        for name, data in members.items():
            stored = zipfile.ZIP_STORED if name == "mimetype" else zipfile.ZIP_DEFLATED
            z.writestr(zipfile.ZipInfo(name), data, compress_type=stored)
    return path


def cut_mid_line(territory: Path, folder: Path) -> Built:
    original = delivered(territory, "sne")
    data = original.read_bytes()
    start = data.index(b"\r\n", len(data) // 2) + 2
    cut = start + (data.index(b"\r\n", start) - start) // 2
    (folder / original.name).write_bytes(data[:cut])
    return Built(folder / original.name, secrets=names_in(load(original, "sne")))


def huge_cell(territory: Path, folder: Path) -> Built:
    original = delivered(territory, "sne")
    rows = read_csv_rows(original, "cp1252")
    rows[5][rows[0].index("MOTIF_RADIATION")] = "x" * 5_000_000
    path = write_csv_rows(folder / original.name, rows, "cp1252")
    return Built(path, secrets=names_in(load(original, "sne")))


def bom_then_garbage(territory: Path, folder: Path) -> Built:
    original = delivered(territory, "syplo")
    path = folder / original.name
    path.write_bytes(original.read_bytes() + b"\x00\x9f\xff\xfe\x80\x81 PK\x03\x04")
    return Built(path, secrets=names_in(load(original, "syplo")))


def beside_original(
    source: str, pattern: str, name: str, edit: Callable[[Sheet, int], Sheet]
) -> Callable[[Path, Path], Built]:
    """The original delivery, and next to it a second file `name` (the corrected copy)."""

    def build(territory: Path, folder: Path) -> Built:
        original = delivered(territory, source, pattern)
        shutil.copyfile(original, folder / original.name)
        sheet = load(original, source)
        path = save(edit(sheet, header_index(sheet)), folder / name, source)
        return Built(path, secrets=names_in(sheet))

    return build


def folder_named_like_the_file(territory: Path, folder: Path) -> Built:
    path = folder / delivered(territory, "sne").name
    path.mkdir()
    return Built(path)


def linked_file(territory: Path, folder: Path) -> Built:
    """A link to a file elsewhere on the disk (here, the territory's own delivery)."""
    path = folder / "sne_demandes.csv"
    path.symlink_to(delivered(territory, "sne"))
    return Built(path)


def linked_month_folder(territory: Path, folder: Path) -> Built:
    """The source's month folder is a link to a folder elsewhere on the disk."""
    elsewhere = folder.parents[3] / "elsewhere"
    elsewhere.mkdir()
    shutil.copyfile(delivered(territory, "sne"), elsewhere / "sne.csv")
    folder.rmdir()
    folder.symlink_to(elsewhere)
    return Built(folder)


def lock_file_beside(territory: Path, folder: Path) -> Built:
    original = delivered(territory, "siao_urgence")
    path = Path(shutil.copyfile(original, folder / original.name))
    (folder / f"~${original.name}").write_bytes(b"\x00lock")
    (folder / "Thumbs.db").write_bytes(b"\x00thumbs")
    return Built(path)


# --------------------------------------------------------------- the corpus
OLE_HEADER = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
CASES = {
    # ---- the file cannot be read
    "empty_csv": Case("sne", raw("sne_vide.csv", b""), problem="empty_file"),
    "empty_xlsx": Case("siao_urgence", raw("115_vide.xlsx", b""), problem="empty_file"),
    "pdf_named_xlsx": Case(
        "siao_urgence",
        raw("115.xlsx", b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj"),
        problem="unreadable",
    ),
    "password_protected": Case(
        "siao_urgence",
        raw("115_protege.xlsx", OLE_HEADER + b"\0" * 4096),
        problem="password_protected",
    ),
    "truncated_xlsx": Case("hebergement", truncated("hebergement", "chu_*"), problem="unreadable"),
    "xlsx_named_csv": Case(
        "siao_urgence", copied("siao_urgence", name="115_export.csv"), problem="not_a_csv"
    ),
    "binary_garbage_csv": Case(
        "sne", raw("sne_demandes.csv", bytes(range(256)) * 8), problem="no_header"
    ),
    "unclosed_quote_csv": Case("sne", unclosed_quote_csv, problem="unreadable"),
    # ---- the file is not shaped like the partner's export
    "no_header_row_xlsx": Case(
        "siao_urgence", edited("siao_urgence", "*", data_only), problem="no_header"
    ),
    "no_header_row_csv": Case("sne", edited("sne", "*", data_only), problem="no_header"),
    "unrelated_workbook": Case("dalo", unrelated_workbook, problem="no_header"),
    "missing_birth_date_column": Case(
        "siao_insertion",
        edited("siao_insertion", "*", drop_column("Date de naissance")),
        problem="missing_column",
        column="Date de naissance",
    ),
    "missing_response_column": Case(
        "siao_urgence",
        edited("siao_urgence", "*", drop_column("Réponse")),
        problem="missing_column",
        column="Réponse",
    ),
    "missing_entry_date_column": Case(
        "hebergement",
        edited("hebergement", "chu_*", drop_column("Date d'entrée")),
        problem="missing_column",
        column="Date d'entrée",
    ),
    "misnamed_last_name_column_csv": Case(
        "sne",
        edited("sne", "*", rename_column("NOM", "NOM_FAMILLE")),
        problem="missing_column",
        column="NOM",
    ),
    "missing_name_column_maraudes": Case(
        "maraudes",
        edited("maraudes", "*", drop_column("NOM Prénom")),
        problem="missing_column",
        column="NOM Prénom",
    ),
    "header_without_rows_xlsx": Case(
        "siao_urgence", edited("siao_urgence", "*", header_then()), problem="no_data_rows"
    ),
    "header_without_rows_csv": Case(
        "syplo", edited("syplo", "*", header_then()), problem="no_data_rows"
    ),
    "only_a_totals_line": Case(
        "hebergement",
        edited("hebergement", "chu_*", header_then([], ["Total : 0 personne"])),
        problem="no_data_rows",
    ),
    "only_a_totals_line_with_counts": Case(
        "hebergement",
        edited("hebergement", "chu_*", header_then([], ["TOTAL", None, None, None, None, 0])),
        problem="no_data_rows",
    ),
    "file_of_another_month": Case(
        "sne", copied("sne", month=date(2025, 1, 1)), problem="wrong_month"
    ),
    # ---- a re-delivery whose rows are mostly unusable: refused whole, the previous one stays
    "names_as_formulas_without_values": Case(
        "siao_urgence",
        edited("siao_urgence", "*", as_formulas("Nom", "Prénom")),
        problem="formulas_without_values",
        detail="« Données »",
    ),
    "every_date_a_year_ahead": Case(
        "sne",
        edited(
            "sne",
            "*",
            every_date(
                lambda d: d.replace(year=d.year + 1).strftime("%d/%m/%Y"), "DATE_DEPOT", "DATE_MAJ"
            ),
        ),
        problem="wrong_month",
        detail="mostly in 2026-02",
    ),
    "a_later_month_file_sent_as_the_month_before": Case(
        "sne", copied("sne"), problem="wrong_month", month=JANUARY, detail="mostly in 2025-02"
    ),
    "dates_month_first": Case(
        "sne",
        edited(
            "sne",
            "*",
            every_date(
                lambda d: d.strftime("%m/%d/%Y"), "DATE_NAISSANCE", "DATE_DEPOT", "DATE_MAJ"
            ),
        ),
        problem="month_first_dates",
        column="DATE_NAISSANCE",
    ),
    "answer_column_recoded": Case(
        "siao_urgence",
        edited("siao_urgence", "*", recode("Réponse", {"Pourvue": "1", "Non pourvue": "2"})),
        problem="too_many_rejected_rows",
        column="Réponse",
        detail=r"\d+ of \d+ rows \(\d+%\) could not be used.*unknown_code:response",
    ),
    "names_left_out_of_the_export": Case(
        "sne",
        edited("sne", "*", blank("NOM", "PRENOM")),
        problem="too_many_rejected_rows",
        column="NOM",
        detail="no_identity",
    ),
    "data_split_over_two_sheets": Case(
        "siao_urgence",
        rewritten("siao_urgence", "*", split_in_two),
        problem="several_data_sheets",
        detail="« Données », « Suite »",
    ),
    "csv_cut_mid_line": Case("sne", cut_mid_line, problem="truncated", detail="middle of line"),
    "every_row_duplicated": Case(
        "hebergement",
        edited("hebergement", "chu_*", every_row_twice),
        problem="duplicate_rows",
        detail="earlier rows of the same file",
    ),
    "corrected_v2_beside_the_original": Case(
        "hebergement",
        beside_original(
            "hebergement", "chu_*", "chu_le_renouveau_2025-02_v2.xlsx", first_rows(10_000)
        ),
        problem="duplicate_rows",
        detail="rows of 2025-02/hebergement/chu_le_renouveau_2025-02.xlsx",
    ),
    # ---- files the engine must not crash on, or misread
    "stray_cell_at_xfd1048576": Case(
        "siao_urgence",
        rewritten("siao_urgence", "*", stray_cell),
        problem="sheet_too_large",
        detail="1,048,576 rows and 16,384 columns",
    ),
    "stray_cell_far_in_an_ods": Case(
        "siao_urgence", rewritten("siao_urgence", "*", stray_cell_ods), problem="sheet_too_large"
    ),
    "a_5_mb_cell": Case("sne", huge_cell, problem="cell_too_large", detail="near line 6"),
    "bom_then_binary_garbage": Case(
        "syplo", bom_then_garbage, problem="unreadable", detail=r"byte \d+ on is not text"
    ),
    # ---- what is in the folder but is not a delivery: reported, never skipped
    "docx_dropped_in": Case(
        "dalo", raw("courrier.docx", b"PK\x03\x04 word"), problem="unsupported_format"
    ),
    "folder_named_like_the_file": Case("sne", folder_named_like_the_file, problem="not_a_file"),
    "file_linked_from_outside": Case("sne", linked_file, problem="outside_landing"),
    "month_folder_linked_from_outside": Case("sne", linked_month_folder, problem="outside_landing"),
    "provider_list_without_its_usual_name": Case(
        "hebergement", copied("hebergement", name="liste_fevrier.xlsx"), problem="unknown_file_kind"
    ),
    # ---- one row is broken: it alone is quarantined, with its reasons
    "row_without_a_name": Case(
        "sne", one_row("sne", "*", NOM="", PRENOM=""), reasons=["no_identity"]
    ),
    "row_without_a_name_maraudes": Case(
        "maraudes", one_row("maraudes", "*", **{"NOM Prénom": None}), reasons=["no_identity"]
    ),
    "birth_date_31_february": Case(
        "sne",
        one_row("sne", "*", DATE_NAISSANCE="31/02/1987"),
        reasons=["unparseable_date:birth_date"],
    ),
    "birth_date_31_february_iso": Case(
        "syplo",
        one_row("syplo", "*", date_naissance="1987-02-31"),
        reasons=["unparseable_date:birth_date"],
    ),
    "birth_date_in_the_future": Case(
        "sne",
        one_row("sne", "*", DATE_NAISSANCE="12/05/2031"),
        reasons=["implausible_date:birth_date"],
    ),
    "birth_date_in_1850": Case(
        "sne",
        one_row("sne", "*", DATE_NAISSANCE="12/05/1850"),
        reasons=["implausible_date:birth_date"],
    ),
    "unknown_situation_code": Case(
        "sne", one_row("sne", "*", SITUATION_LOGEMENT="ZZ9"), reasons=["unknown_code:situation"]
    ),
    "unknown_sex_code": Case(
        "siao_urgence", one_row("siao_urgence", "*", Sexe="X?"), reasons=["unknown_code:sex"]
    ),
    "unknown_response_label": Case(
        "siao_urgence",
        one_row("siao_urgence", "*", **{"Réponse": "En attente de rappel"}),
        reasons=["unknown_code:response"],
    ),
    "unknown_programme": Case(
        "logement_accompagne",
        one_row("logement_accompagne", "*", Dispositif="Dispositif expérimental"),
        reasons=["unknown_code:programme"],
    ),
    "household_size_in_words": Case(
        "sne",
        one_row("sne", "*", NB_PERSONNES="deux"),
        reasons=["unparseable_number:household_size"],
    ),
    "household_size_too_large": Case(
        "sne",
        one_row("sne", "*", NB_PERSONNES="45"),
        reasons=["rule:household_size:less_than_or_equal_to(30)"],
    ),
    "age_in_words": Case(
        "maraudes",
        one_row("maraudes", "*", **{"Âge (estimé)": "la quarantaine"}),
        reasons=["unparseable_number:age"],
    ),
    "event_after_the_month": Case(
        "sne", one_row("sne", "*", DATE_MAJ="15/07/2025"), reasons=["date_after_month:event_date"]
    ),
    "request_without_a_date": Case(
        "siao_urgence",
        one_row("siao_urgence", "*", **{"Date de la demande": None}),
        reasons=["missing_date:event_date"],
    ),
    "visit_date_in_words": Case(
        "accueils_jour",
        one_row(
            "accueils_jour", "accueil_jour_la_passerelle_*", **{"Date de passage": "début fév."}
        ),
        reasons=["unparseable_date:event_date", "missing_date:event_date"],
    ),
    "name_of_10000_characters": Case(
        "sne", one_row("sne", "*", NOM="A" * 10_000), reasons=["too_long:last_name"]
    ),
    "birth_date_after_the_event": Case(
        "sne",
        one_row("sne", "*", DATE_MAJ="03/02/2025", DATE_NAISSANCE="20/02/2025"),
        reasons=["implausible_date:birth_date"],
    ),
    **{
        f"estimated_age_{age}": Case(
            "maraudes",
            one_row("maraudes", "*", **{"Âge (estimé)": age}),
            reasons=["implausible_age:age"],
        )
        for age in ("-3", "250", "999")
    },
    "formula_as_a_name_csv": Case(
        "sne", one_row("sne", "*", NOM="=cmd|' /C calc'!A0"), reasons=["formula:last_name"]
    ),
    "formula_as_a_name_xlsx": Case(
        "maraudes",
        one_row("maraudes", "*", **{"NOM Prénom": "+cmd|' /C calc'!A0"}),
        reasons=["formula:full_name"],
    ),
    # ---- read correctly: the same rows as the original delivery
    "template_sheet_before_the_data": Case(
        "siao_urgence", rewritten("siao_urgence", "*", template_first), accepted=True
    ),
    "old_xls_workbook": Case(
        "logement_accompagne", rewritten("logement_accompagne", "*", as_xls), accepted=True
    ),
    "csv_named_txt": Case(
        "sne", reencoded("sne", "cp1252", name="sne_demandes_21_2025-02.txt"), accepted=True
    ),
    "utf16_csv": Case("sne", reencoded("sne", "utf-16"), accepted=True),
    "utf16_csv_without_bom": Case("syplo", reencoded("syplo", "utf-16-le"), accepted=True),
    "pipe_delimited_csv": Case("sne", reencoded("sne", "utf-8", "|"), accepted=True),
    "lock_and_thumbnail_files_beside": Case("siao_urgence", lock_file_beside, accepted=True),
    # ---- staged, and a WARN check says what changed, with figures
    "optional_column_dropped": Case(
        "siao_urgence",
        edited("siao_urgence", "*", drop_column("N° demande")),
        warn=("column_drift", {"columns_added": [], "columns_missing": ["record_ref"]}),
    ),
    "a_third_of_the_usual_rows": Case(
        "sne",
        edited("sne", "*", first_rows(34)),
        warn=("volume", {}),
    ),
    "new_column_titled_with_a_person": Case(
        "siao_urgence",
        edited("siao_urgence", "*", add_column("Contact DUPONT 0612345678")),
        accepted=True,
    ),
    "exit_before_entry": Case(
        "hebergement",
        one_row(
            "hebergement",
            "chu_*",
            **{"Date d'entrée": "15/02/2025", "Date de sortie": "01/02/2025"},
        ),
        reasons=["rule:row:exit_after_entry"],
    ),
}


# --------------------------------------------------------------- a warehouse to compare
@pytest.fixture(scope="module")
def base_warehouse(territory: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """February of every source of the territory and January of two (the months before, that
    volume and column drift compare with), ingested as the asset does: other sources and
    another month are there to stay unchanged."""
    path = tmp_path_factory.mktemp("corpus") / "synchro.duckdb"
    months = [(s, MONTH) for s in all_sources().values()]
    for source, month in [*months, (get("sne"), JANUARY), (get("siao_urgence"), JANUARY)]:
        ingest_source_month(
            path, territory / "landing", source, month, KEY, MAX_REJECTION_RATE, "base"
        )
    return path


def table_state(conn: duckdb.DuckDBPyConnection) -> dict[tuple[str, str, date], tuple[int, int]]:
    """(table, source, month) -> (rows, a hash of the rows) for staging, quarantine and
    lineage: a change anywhere shows."""
    state = {}
    for table in warehouse.existing_tables(conn):
        schema, name = table.split(".")
        if schema not in ("staging", "quarantine", "lineage") or name == "key_fingerprint":
            continue
        source = "source" if schema == "lineage" else f"'{name}'"
        for src, month, rows, digest in conn.execute(
            f"SELECT {source}, month, count(*), sum(hash(t)::HUGEINT) FROM {table} t GROUP BY ALL"
        ).fetchall():
            state[(table if schema == "lineage" else schema, src, month)] = (rows, digest)
    return state


@cache
def base_state(path: Path) -> dict[tuple[str, str, date], tuple[int, int]]:
    with warehouse.read_only(path) as conn:
        return table_state(conn)


def changed(before: dict, after: dict) -> set[tuple[str, str, date]]:
    return {k for k in before.keys() | after.keys() if before.get(k) != after.get(k)}


# --------------------------------------------------------------- the test
@pytest.mark.parametrize("name", sorted(CASES))
def test_bad_file(name, territory, base_warehouse, tmp_path):
    case = CASES[name]
    source = get(case.source)
    built = case.build(territory, landing_folder(tmp_path, case.source, case.month))
    db = Path(shutil.copyfile(base_warehouse, tmp_path / "synchro.duckdb"))
    refused, result = None, None
    try:
        result = ingest_source_month(
            db, tmp_path / "landing", source, case.month, KEY, MAX_REJECTION_RATE, "case"
        )
    except FileRejected as error:
        refused = error
    with warehouse.read_only(db) as conn:  # one connection for every look at the result
        after = table_state(conn)
        lineage = str(
            conn.execute(
                "SELECT * FROM lineage.files WHERE source = ? AND month = ? UNION ALL BY NAME "
                "SELECT * FROM lineage.refusals WHERE source = ? AND month = ?",
                [case.source, case.month] * 2,
            ).fetchall()
        )
        refusals = conn.execute(
            "SELECT file_name, problem, column_title FROM lineage.refusals "
            "WHERE source = ? AND month = ?",
            [case.source, case.month],
        ).fetchall()
        outcomes = {o.name: o for o in staging_checks(conn, source, case.month, MAX_REJECTION_RATE)}
    assert not [s for s in built.secrets | {"DUPONT", "0612345678"} if s in lineage]
    here = {(t, case.source, case.month) for t in ("staging", "quarantine", "lineage.files")}
    if case.problem:
        assert refused is not None, f"{name}: accepted, expected {case.problem}"
        assert_refused(case, built, refused)
        # nothing else changed: the source-month's previous state stays, and the refusal is kept
        assert changed(base_state(base_warehouse), after) == {
            ("lineage.refusals", case.source, case.month)
        }
        [row] = refusals
        assert row[0].endswith(built.path.name) and row[1].startswith(case.problem)
        assert row[2] == case.column
        why, fix = refusal_reason(row[1], row[2], source)  # what the partner's feedback says
        assert why and fix and "{" not in why + fix
        return
    assert refused is None, str(refused)
    # nothing else changed: only this source-month's staging, quarantine and file registry
    assert changed(base_state(base_warehouse), after) <= here
    assert ("lineage.files", case.source, case.month) in after
    original = delivered(territory, case.source, f"{Path(built.path.name).stem}.*")
    before = staged_original(original, case.source)
    if case.accepted:
        assert_frame_equal(without_provenance(result.staged), without_provenance(before.staged))
        assert_frame_equal(
            without_provenance(result.quarantine), without_provenance(before.quarantine)
        )
        return
    if case.warn:
        check, figures = case.warn
        warned = outcomes[check]
        assert not warned.passed and warned.severity == "WARN", warned
        assert {k: warned.metadata[k] for k in figures} == figures
        assert [o.name for o in outcomes.values() if not o.passed] == [check]
        if check == "volume":
            assert warned.metadata["rows_staged"] == result.staged.height
            assert warned.metadata["ratio"] < 0.5
        return
    new = result.quarantine.join(before.quarantine, on="row_number", how="anti")
    assert new["row_number"].to_list() == built.broken_rows  # exactly the broken row
    assert [sorted(r) for r in new["reasons"]] == [sorted(case.reasons)]
    assert result.quarantine.height == before.quarantine.height + len(built.broken_rows)
    assert result.staged.height == before.staged.height - len(built.broken_rows)  # the others
    assert not set(result.staged["row_number"]) & set(built.broken_rows)
    values = " ".join(
        str(v) for frame in (result.quarantine, result.staged) for row in frame.rows() for v in row
    )
    assert built.secrets and not [s for s in built.secrets if s in values]


def assert_refused(case: Case, built: Built, rejected: FileRejected) -> None:
    message = str(rejected)
    assert rejected.problem == case.problem, message
    assert rejected.file == built.path.name and message.startswith(built.path.name)
    assert f"[{case.problem}]" in message
    assert "What to do: " in message and rejected.fix and rejected.fix in message
    if case.column:
        assert rejected.column == case.column and f"column « {case.column} »" in message
    else:
        assert rejected.column is None
    if case.detail:
        assert re.search(case.detail, rejected.detail), rejected.detail
    leaked = [s for s in built.secrets if s in message]
    assert not leaked, "a cell value is repeated in the error message"


def test_the_corpus_covers_every_outcome(capsys):
    """At least 70 cases; the breakdown by outcome is printed (pytest -s) for the report."""
    outcomes = Counter(c.outcome for c in CASES.values())
    with capsys.disabled():
        print(f"\nbad-file corpus: {len(CASES)} cases, {dict(sorted(outcomes.items()))}")
    assert len(CASES) >= 70
    assert outcomes["refused"] >= 30 and outcomes["quarantined"] >= 20
    assert outcomes["warned"] >= 2 and outcomes["accepted"] >= 6
    assert len({c.problem for c in CASES.values() if c.problem}) >= 20
    assert len({r for c in CASES.values() for r in c.reasons or []}) >= 14


def test_a_stray_document_is_not_a_delivery_but_is_reported(territory, tmp_path):
    """delivered_files follows the source's kinds of file; what else lies in the folder is
    reported by delivery_problem, which names it, and refuses the source-month."""
    from synchro_dagster.ingest.stage import delivered_files, delivery_problem

    folder = landing_folder(tmp_path, "dalo")
    (folder / "courrier.docx").write_bytes(b"PK\x03\x04 word")
    shutil.copyfile(delivered(territory, "dalo"), folder / "dalo.xlsx")
    files = delivered_files(tmp_path / "landing", get("dalo"), MONTH)
    assert [f.name for f in files] == ["dalo.xlsx"]
    problem = delivery_problem(tmp_path / "landing", get("dalo"), MONTH)
    assert (problem.file, problem.problem) == ("courrier.docx", "unsupported_format")
    (folder / "courrier.docx").unlink()
    assert delivery_problem(tmp_path / "landing", get("dalo"), MONTH) is None


def test_single_person_sne_demand_without_sex_keeps_no_composition(territory, tmp_path):
    """'PS' (personne seule) needs the sex to become homme_seul or femme_seule: without it the
    row is still staged (it names someone) but its composition is left unknown, not guessed."""
    original = delivered(territory, "sne")
    sheet = load(original, "sne")
    header = sheet[0][1]
    sex, compo = header.index("SEXE"), header.index("COMPOSITION")
    usable = set(stage_file(original, "sne").staged["row_number"])  # not deliberately broken
    singles = [n for n, r in sheet[1:] if r[compo] == "PS" and n in usable]
    without_sex = set(singles[::2])
    for n, r in sheet[1:]:
        if n in without_sex:
            r[sex] = ""
    path = save(sheet, landing_folder(tmp_path, "sne") / original.name, "sne")
    staged = stage_file(path, "sne").staged
    by_row = dict(zip(staged["row_number"], staged["composition"], strict=True))
    assert without_sex and all(n in by_row for n in without_sex)  # staged, not quarantined
    assert {by_row[n] for n in without_sex} == {None}
    with_sex = [by_row[n] for n in singles if n not in without_sex and n in by_row]
    assert with_sex and set(with_sex) <= {"homme_seul", "femme_seule"}


def test_no_message_or_reason_repeats_a_value_of_the_broken_row(territory, tmp_path):
    """The row's own name stays out of the quarantine, even when the row is refused for it."""
    build = one_row("siao_urgence", "*", Sexe="X?", **{"Réponse": "??"})
    built = build(territory, landing_folder(tmp_path, "siao_urgence"))
    result = stage_file(built.path, "siao_urgence")
    row = result.quarantine.filter(pl.col("row_number") == built.broken_rows[0])
    assert sorted(row["reasons"][0]) == ["unknown_code:response", "unknown_code:sex"]
    text = str(result.quarantine.to_dicts())
    assert built.secrets and not [s for s in built.secrets if s in text]
    assert "X?" not in text and "??" not in text


def test_a_refused_delivery_taken_back_ends_its_refusal(territory, base_warehouse, tmp_path):
    """The partner removes the `_v2` copy that got the month refused: the folder holds again
    what is staged, nothing is staged anew, and the refusal is over."""
    folder = landing_folder(tmp_path, "hebergement")
    for path in (territory / "landing" / "2025-02" / "hebergement").iterdir():
        shutil.copyfile(path, folder / path.name)
    v2 = folder / "chu_le_renouveau_2025-02_v2.xlsx"
    shutil.copyfile(folder / "chu_le_renouveau_2025-02.xlsx", v2)
    db = Path(shutil.copyfile(base_warehouse, tmp_path / "synchro.duckdb"))
    hebergement = get("hebergement")
    with pytest.raises(FileRejected, match=r"\[duplicate_rows\]"):
        ingest_source_month(db, tmp_path / "landing", hebergement, MONTH, KEY, 0.2, "case")
    with warehouse.connect(db) as conn:
        assert unchanged_delivery(conn, tmp_path / "landing", hebergement, MONTH) is None
    v2.unlink()
    with warehouse.connect(db) as conn:
        why = unchanged_delivery(conn, tmp_path / "landing", hebergement, MONTH)
    assert why == "identical re-delivery"
    with warehouse.read_only(db) as conn:
        assert changed(base_state(base_warehouse), table_state(conn)) == set()
