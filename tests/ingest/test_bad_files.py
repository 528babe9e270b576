"""The bad-file corpus: each broken delivery gives its clear error or its quarantine reason.

A file-level problem names the file, the column or rule, and what the partner
should do; a row problem quarantines that row with a reason code and stages
the others. Neither ever repeats a cell value.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import openpyxl
import polars as pl
import pytest
from conftest import KEY, MONTH, delivered, sheet_rows, write_xlsx

from sources import get
from synchro_dagster.ingest.errors import FileRejected
from synchro_dagster.ingest.read import read_table
from synchro_dagster.ingest.stage import stage_month


@dataclass
class Case:
    source: str
    build: Callable[[Path, Path], Path]  # (territory, folder) -> the bad file
    problem: str | None = None  # FileRejected problem code expected
    column: str | None = None
    reason: str | None = None  # quarantine reason expected on the broken row
    secret: str | None = None  # a value of the broken row that must not be echoed


def folder_for(tmp_path: Path, source: str) -> Path:
    folder = tmp_path / "landing" / MONTH.strftime("%Y-%m") / source
    folder.mkdir(parents=True)
    return folder


# --------------------------------------------------------------- builders
def raw(name: str, data: bytes) -> Callable[[Path, Path], Path]:
    def build(_territory: Path, folder: Path) -> Path:
        (folder / name).write_bytes(data)
        return folder / name

    return build


def truncated(source: str, pattern: str) -> Callable[[Path, Path], Path]:
    def build(territory: Path, folder: Path) -> Path:
        original = delivered(territory, source, pattern)
        data = original.read_bytes()
        (folder / original.name).write_bytes(data[: len(data) // 2])
        return folder / original.name

    return build


def sne_lines(
    edit: Callable[[list[list[str]]], list[list[str]]], name: str | None = None
) -> Callable[[Path, Path], Path]:
    """The SNE export with its lines (split on ';') edited."""

    def build(territory: Path, folder: Path) -> Path:
        original = delivered(territory, "sne")
        lines = [
            line.split(";") for line in original.read_bytes().decode("cp1252").split("\r\n") if line
        ]
        out = folder / (name or original.name)
        out.write_bytes("\r\n".join(";".join(r) for r in edit(lines)).encode("cp1252"))
        return out

    return build


def sne_cell(column: str, value: str) -> Callable[[list[list[str]]], list[list[str]]]:
    def edit(lines: list[list[str]]) -> list[list[str]]:
        lines[1][lines[0].index(column)] = value
        return lines

    return edit


def xlsx_rows(
    source: str, pattern: str, edit: Callable[[list[list]], list[list]]
) -> Callable[[Path, Path], Path]:
    def build(territory: Path, folder: Path) -> Path:
        original = delivered(territory, source, pattern)
        return write_xlsx(folder / original.name, edit(sheet_rows(original)))

    return build


def header_at(rows: list[list]) -> int:
    return next(i for i, r in enumerate(rows) if sum(1 for c in r if c not in (None, "")) > 3)


def drop_column(title: str) -> Callable[[list[list]], list[list]]:
    def edit(rows: list[list]) -> list[list]:
        j = rows[header_at(rows)].index(title)
        return [r[:j] + r[j + 1 :] for r in rows]

    return edit


def first_row_cell(title: str, value) -> Callable[[list[list]], list[list]]:
    def edit(rows: list[list]) -> list[list]:
        h = header_at(rows)
        rows[h + 1][rows[h].index(title)] = value
        return rows

    return edit


def keep_header_only(extra: list[list]) -> Callable[[list[list]], list[list]]:
    def edit(rows: list[list]) -> list[list]:
        return rows[: header_at(rows) + 1] + extra

    return edit


def other_month(territory: Path, folder: Path) -> Path:
    january = next((territory / "landing" / "2025-01" / "sne").glob("*.csv"))
    return Path(shutil.copyfile(january, folder / january.name))


def csv_copy_of_xlsx(territory: Path, folder: Path) -> Path:
    return Path(shutil.copyfile(delivered(territory, "siao_urgence"), folder / "115_export.csv"))


def unclosed_quote(lines: list[list[str]]) -> list[list[str]]:
    lines[3][3] = '"' + lines[3][3]
    return lines


CASES = {
    "empty_csv": Case("sne", raw("sne_vide.csv", b""), problem="empty_file"),
    "empty_xlsx": Case("siao_urgence", raw("115_vide.xlsx", b""), problem="empty_file"),
    "pdf_named_xlsx": Case(
        "siao_urgence",
        raw("115.xlsx", b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj"),
        problem="unreadable",
    ),
    "password_protected": Case(
        "siao_urgence",
        raw("115_protege.xlsx", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 4096),
        problem="password_protected",
    ),
    "truncated_xlsx": Case("hebergement", truncated("hebergement", "chu_*"), problem="unreadable"),
    "xlsx_named_csv": Case("siao_urgence", csv_copy_of_xlsx, problem="not_a_csv"),
    "binary_garbage_csv": Case("sne", raw("sne.csv", bytes(range(256)) * 8), problem="no_header"),
    "unclosed_quote_csv": Case("sne", sne_lines(unclosed_quote), problem="unreadable"),
    "no_header_row": Case(
        "siao_urgence",
        xlsx_rows("siao_urgence", "*", lambda rows: rows[header_at(rows) + 1 :]),
        problem="no_header",
    ),
    "missing_birth_date_column": Case(
        "hebergement",
        xlsx_rows("hebergement", "chu_*", drop_column("Date d'entrée")),
        problem="missing_column",
        column="Date d'entrée",
    ),
    "missing_response_column": Case(
        "siao_urgence",
        xlsx_rows("siao_urgence", "*", drop_column("Réponse")),
        problem="missing_column",
        column="Réponse",
    ),
    "missing_nom_csv": Case(
        "sne",
        sne_lines(
            lambda lines: [[("NOM_FAMILLE" if c == "NOM" else c) for c in lines[0]], *lines[1:]]
        ),
        problem="missing_column",
        column="NOM",
    ),
    "header_without_rows": Case(
        "siao_urgence", xlsx_rows("siao_urgence", "*", keep_header_only([])), problem="no_data_rows"
    ),
    "only_a_totals_line": Case(
        "hebergement",
        xlsx_rows("hebergement", "chu_*", keep_header_only([[], ["Total : 0 personne"]])),
        problem="no_data_rows",
    ),
    "file_of_another_month": Case("sne", other_month, problem="wrong_month"),
    # row-level problems: the row is quarantined, the others staged
    "row_without_a_name": Case(
        "sne",
        sne_lines(lambda lines: sne_cell("PRENOM", "")(sne_cell("NOM", "")(lines))),
        reason="no_identity",
    ),
    "impossible_birth_date": Case(
        "sne",
        sne_lines(sne_cell("DATE_NAISSANCE", "31/02/1987")),
        reason="unparseable_date:birth_date",
        secret="31/02/1987",
    ),
    "birth_date_in_the_future": Case(
        "sne",
        sne_lines(sne_cell("DATE_NAISSANCE", "12/05/2031")),
        reason="implausible_date:birth_date",
    ),
    "birth_date_in_1850": Case(
        "sne",
        sne_lines(sne_cell("DATE_NAISSANCE", "12/05/1850")),
        reason="implausible_date:birth_date",
    ),
    "unknown_situation_code": Case(
        "sne",
        sne_lines(sne_cell("SITUATION_LOGEMENT", "ZZ9")),
        reason="unknown_code:situation",
        secret="ZZ9",
    ),
    "unknown_sex_code": Case(
        "siao_urgence",
        xlsx_rows("siao_urgence", "*", first_row_cell("Sexe", "Inconnu?")),
        reason="unknown_code:sex",
    ),
    "unreadable_household_size": Case(
        "sne",
        sne_lines(sne_cell("NB_PERSONNES", "deux")),
        reason="unparseable_number:household_size",
    ),
    "event_after_the_month": Case(
        "sne", sne_lines(sne_cell("DATE_MAJ", "15/07/2025")), reason="date_after_month:event_date"
    ),
    "request_without_a_date": Case(
        "siao_urgence",
        xlsx_rows("siao_urgence", "*", first_row_cell("Date de la demande", None)),
        reason="missing_date:event_date",
    ),
    "exit_before_entry": Case(
        "hebergement",
        xlsx_rows("hebergement", "chu_*", first_row_cell("Date de sortie", "01/01/1999")),
        reason="rule:row:exit_after_entry",
    ),
    "unknown_programme": Case(
        "logement_accompagne",
        xlsx_rows(
            "logement_accompagne", "*", first_row_cell("Dispositif", "Dispositif expérimental")
        ),
        reason="unknown_code:programme",
    ),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_bad_file(name, territory, tmp_path):
    case = CASES[name]
    source = get(case.source)
    path = case.build(territory, folder_for(tmp_path, case.source))
    landing = tmp_path / "landing"
    if case.problem:
        with pytest.raises(FileRejected) as info:
            stage_month(landing, source, MONTH, KEY, files=[path])
        problem = info.value
        message = str(problem)
        assert problem.problem == case.problem, message
        assert path.name in message and "What to do:" in message and problem.fix
        if case.column:
            assert problem.column == case.column and f"« {case.column} »" in message
        return
    result = stage_month(landing, source, MONTH, KEY, files=[path])
    quarantined = result.quarantine.filter(pl.col("reasons").list.contains(case.reason))
    assert quarantined.height >= 1, result.quarantine["reasons"].to_list()
    assert result.staged.height > 0  # the good rows are staged
    assert set(quarantined["row_number"]).isdisjoint(set(result.staged["row_number"]))
    if case.secret:
        text = " ".join(str(v) for v in result.quarantine.to_dicts())
        assert case.secret not in text


def test_the_corpus_has_at_least_twenty_bad_files():
    assert len(CASES) >= 20


def test_unsupported_extension_is_refused_with_the_formats_we_read(tmp_path):
    path = tmp_path / "export.docx"
    path.write_bytes(b"PK\x03\x04 not a spreadsheet")
    with pytest.raises(FileRejected) as info:
        read_table(path, get("dalo"))
    assert info.value.problem == "unsupported_format" and ".xlsx" in info.value.fix


def test_a_single_person_sne_demand_without_sex_has_no_composition_rather_than_a_guess(
    territory, tmp_path
):
    build = sne_lines(
        lambda lines: [
            lines[0],
            *[
                [*(r[: lines[0].index("SEXE")]), "", *r[lines[0].index("SEXE") + 1 :]]
                for r in lines[1:]
                if r[lines[0].index("COMPOSITION")] == "PS"
            ],
        ]
    )
    path = build(territory, folder_for(tmp_path, "sne"))
    result = stage_month(tmp_path / "landing", get("sne"), MONTH, KEY, files=[path])
    assert (
        result.staged.height > 0
        and result.staged["composition"].null_count() == result.staged.height
    )


def test_messages_never_carry_a_cell_value(territory, tmp_path):
    """A file refused for a missing column does not quote any of its names."""
    path = xlsx_rows("siao_urgence", "*", drop_column("Réponse"))(
        territory, folder_for(tmp_path, "siao_urgence")
    )
    names = {
        str(c)
        for row in openpyxl.load_workbook(path).active.iter_rows(values_only=True)
        for c in row[3:5]
        if c
    }
    with pytest.raises(FileRejected) as info:
        stage_month(tmp_path / "landing", get("siao_urgence"), MONTH, KEY, files=[path])
    assert not [n for n in names if n in str(info.value)]
