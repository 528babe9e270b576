"""The bad-file corpus: each broken delivery gives its clear error or its quarantine reason.

A file-level problem names the file, the column when one is concerned, and says
what the partner should do; a row problem sends exactly the broken row(s) to
quarantine with their reason codes and stages every other row. Neither ever
repeats a cell value: the names of the rows concerned appear in no message and
no quarantine column.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from functools import cache
from pathlib import Path

import polars as pl
import pytest
from filekit import (
    MONTH,
    Sheet,
    delivered,
    header_index,
    landing_folder,
    read_csv_rows,
    read_sheet,
    stage_file,
    write_csv_rows,
    write_xlsx,
)

from synchro_dagster.ingest.errors import FileRejected
from synchro_dagster.ingest.read import read_table
from synchro_dagster.sources import get

CSV_ENCODING = {"sne": "cp1252", "siao_insertion": "cp1252", "syplo": "utf-8-sig"}
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
    direct: bool = False  # a file no FileKind picks up: read it as a person dropping it would


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
def staged_rows(original: Path, source: str) -> frozenset[int]:
    return frozenset(stage_file(original, source).staged["row_number"])


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
    "docx_dropped_in": Case(
        "dalo", raw("courrier.docx", b"PK\x03\x04 word"), problem="unsupported_format", direct=True
    ),
    "binary_garbage_csv": Case("sne", raw("sne.csv", bytes(range(256)) * 8), problem="no_header"),
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


@pytest.mark.parametrize("name", sorted(CASES))
def test_bad_file(name, territory, tmp_path):
    case = CASES[name]
    source = get(case.source)
    built = case.build(territory, landing_folder(tmp_path, case.source))
    if case.problem:
        with pytest.raises(FileRejected) as info:
            if case.direct:
                read_table(built.path, source)
            else:
                stage_file(built.path, case.source)
        rejected, message = info.value, str(info.value)
        assert rejected.problem == case.problem, message
        assert rejected.file == built.path.name and message.startswith(built.path.name)
        assert f"[{case.problem}]" in message
        assert "What to do: " in message and rejected.fix and rejected.fix in message
        if case.column:
            assert rejected.column == case.column and f"column « {case.column} »" in message
        else:
            assert rejected.column is None
        leaked = [s for s in built.secrets if s in message]
        assert not leaked, "a cell value is repeated in the error message"
        return

    original = delivered(territory, case.source, built.path.name)
    before = stage_file(original, case.source)
    after = stage_file(built.path, case.source)
    new = after.quarantine.join(before.quarantine, on="row_number", how="anti")
    assert new["row_number"].to_list() == built.broken_rows  # exactly the broken row
    assert [sorted(r) for r in new["reasons"]] == [sorted(case.reasons)]
    assert after.quarantine.height == before.quarantine.height + len(built.broken_rows)
    assert after.staged.height == before.staged.height - len(built.broken_rows)  # the others
    assert not set(after.staged["row_number"]) & set(built.broken_rows)
    values = " ".join(
        str(v) for frame in (after.quarantine, after.staged) for row in frame.rows() for v in row
    )
    assert built.secrets and not [s for s in built.secrets if s in values]


def test_the_corpus_has_at_least_twenty_bad_files():
    assert len(CASES) >= 20
    assert len({c.problem for c in CASES.values() if c.problem}) >= 8
    assert len({r for c in CASES.values() for r in c.reasons or []}) >= 10


def test_a_docx_is_not_even_picked_up_from_the_landing_folder(territory, tmp_path):
    """delivered_files follows the source's file patterns: a stray document is not a delivery."""
    from synchro_dagster.ingest.stage import delivered_files

    folder = landing_folder(tmp_path, "dalo")
    (folder / "courrier.docx").write_bytes(b"PK\x03\x04 word")
    shutil.copyfile(delivered(territory, "dalo"), folder / "dalo.xlsx")
    files = delivered_files(tmp_path / "landing", get("dalo"), MONTH)
    assert [f.name for f in files] == ["dalo.xlsx"]


def test_single_person_sne_demand_without_sex_keeps_no_composition(territory, tmp_path):
    """'PS' (personne seule) needs the sex to become homme_seul or femme_seule: without it the
    row is still staged (it names someone) but its composition is left unknown, not guessed."""
    original = delivered(territory, "sne")
    sheet = load(original, "sne")
    header = sheet[0][1]
    sex, compo = header.index("SEXE"), header.index("COMPOSITION")
    singles = [n for n, r in sheet[1:] if r[compo] == "PS"]
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
