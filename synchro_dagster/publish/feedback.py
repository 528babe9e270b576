"""What each partner should fix: one French workbook per source and month.

Built from what the partner delivered (`landing/`) and what the warehouse kept of it
(`lineage.files`, `lineage.refusals`, `quarantine.<source>`, `marts.indicators`): the files
received, the files refused and what to do, the rows set aside by row number and why, the
columns that changed since the previous delivery, the volume against the trailing months, and
the households only that partner saw. Never a value of a row: row numbers, reason codes,
column titles the source declares, and counts. It needs no staged row of the month, so a
refused delivery gets its feedback too.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path

import duckdb
import openpyxl
import polars as pl
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.worksheet import Worksheet

from synchro_dagster import warehouse
from synchro_dagster.ingest.checks import (
    TRAILING_MONTHS,
    VOLUME_TOLERANCE,
    column_drift,
    delivery_history,
    volume,
)
from synchro_dagster.ingest.errors import (
    COLUMN_RULE_OTHERWISE,
    COLUMN_RULES,
    FILE_PROBLEMS,
    ROW_REASONS,
    ROW_RULE_OTHERWISE,
    ROW_RULES,
)
from synchro_dagster.ingest.stage import delivered_files, sha256_of
from synchro_dagster.publish.french import month_name, percent, thousands
from synchro_dagster.publish.xlsx import as_text
from synchro_dagster.sources import all_sources
from synchro_dagster.sources.spec import Source

# a canonical or staged field, in words, when the source declares no column title for it
FIELD_LABELS = {
    "record_ref": "numéro de dossier",
    "household_ref": "numéro de ménage",
    "last_name": "nom",
    "first_name": "prénom",
    "birth_name": "nom de naissance",
    "full_name": "nom et prénom",
    "age": "âge",
    "birth_date": "date de naissance",
    "event_date": "date de l'événement",
    "need_since": "date de la demande",
    "entry_date": "date d'entrée",
    "exit_date": "date de sortie",
    "household_size": "nombre de personnes",
    "sex": "sexe",
    "role": "lien avec le demandeur",
    "composition": "composition du ménage",
    "situation": "situation",
    "status": "état de la demande",
    "response": "réponse",
    "programme": "dispositif",
    "destination": "motif ou destination de sortie",
}
# staged columns made from an input field
STAGED_FROM = {
    "household_token": "household_ref",
    "record_token": "record_ref",
    "need_status": "status",
    "request_fulfilled": "response",
    "exit_destination": "destination",
}
_CHECK = re.compile(r"^(?P<name>\w+)(?:\((?P<arg>.*)\))?$")
_UNUSED = re.compile(r"^column (?P<place>\d+) #(?P<hash>\w+)$")  # as ingest/stage.py keeps it


@dataclass
class ReceivedFile:
    name: str  # as the partner named it, under its month folder
    received: datetime | None  # when it was dropped (else when it was read)
    status: str
    rows_read: int | None = None
    rows_staged: int | None = None
    rows_quarantined: int | None = None
    rows_ignored: int | None = None


@dataclass
class Feedback:
    source: Source
    month: date
    files: list[ReceivedFile] = field(default_factory=list)
    refusals: list[tuple[str, str, str]] = field(default_factory=list)  # file, reason, to do
    rows: list[tuple[str, int, str, str]] = field(default_factory=list)  # file, row, why, to do
    columns: list[tuple[str, str]] = field(default_factory=list)  # column, what changed
    columns_note: str = ""
    volume: list[tuple[date, int]] = field(default_factory=list)  # trailing months, then this
    volume_note: str = ""
    volume_ok: bool = True
    seen: int | None = None  # households the source named this month
    seen_only: int | None = None  # of which no other source named
    to_do: list[str] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        """What the Dagster UI shows of it: counts only."""
        return {
            "files": len(self.files),
            "files_refused": len(self.refusals),
            "rows_read": sum(f.rows_read or 0 for f in self.files),
            "rows_staged": sum(f.rows_staged or 0 for f in self.files),
            "rows_quarantined": len(self.rows),
            "column_changes": len(self.columns),
            "households_only_this_source": self.seen_only or 0,
        }


def feedback_path(folder: Path, source_id: str, month: date) -> Path:
    """`<folder>/<source>/retour_<source>_<YYYY-MM>.xlsx`."""
    return folder / source_id / f"retour_{source_id}_{month:%Y-%m}.xlsx"


def column_title(source: Source, name: str) -> str:
    """The title the partner's export gives a field (the source's first alias), else its name
    in words."""
    name = STAGED_FROM.get(name, name)
    aliases = source.columns.get(name)
    return aliases[0] if aliases else FIELD_LABELS.get(name, name)


def row_reason(source: Source, code: str) -> tuple[str, str]:
    """A quarantine reason code in plain French: (what is wrong, what to do)."""
    base, _, concerned = code.partition(":")
    if base != "rule":
        text, fix = ROW_REASONS[base]  # a new reason code must be worded in errors.py first
        return text.format(column=column_title(source, concerned)), fix
    column, _, check = concerned.partition(":")
    parts = _CHECK.match(check)
    name, arg = (parts["name"], parts["arg"]) if parts else (check, None)
    if column == "row":
        return ROW_RULES.get(name, ROW_RULE_OTHERWISE)
    rule = COLUMN_RULES.get(name, COLUMN_RULE_OTHERWISE).format(arg=arg)
    text, fix = ROW_REASONS["rule"]
    return text.format(column=column_title(source, column), rule=rule), fix


def refusal_reason(
    problem: str, column: str | None, source: Source | None = None
) -> tuple[str, str]:
    """A refusal's problem code in plain French; a refusal for too many unusable rows carries
    its most frequent row reason after a colon (`too_many_rejected_rows:no_identity`)."""
    base, _, reason = problem.partition(":")
    text, fix = FILE_PROBLEMS[base]
    why, to_do = (
        row_reason(source, reason)
        if reason and source
        else ("des valeurs inutilisables", "corrigez les lignes concernées")
    )
    return (
        text.format(column=column or "", reason=why),
        fix.format(column=column or "", fix=to_do[:1].lower() + to_do[1:]),
    )


def _sentence(parts: Iterable[str]) -> str:
    """Clauses joined into one sentence, capitalised, ending with a full stop."""
    text = " ; ".join(parts)
    return text[:1].upper() + text[1:] + "."


def _shown(name: str) -> str:
    """A landing path without its `YYYY-MM/<source>/` folders: the file as the partner sent it."""
    return "/".join(name.split("/")[2:]) or name


def _rows(conn: duckdb.DuckDBPyConnection, sql: str, params: list) -> list[tuple]:
    return conn.execute(sql, params).fetchall()


def partner_feedback(
    conn: duckdb.DuckDBPyConnection, landing: Path, source: Source, month: date
) -> Feedback:
    """The feedback of `source` for `month`, from its delivered files and the warehouse."""
    present = set(warehouse.existing_tables(conn))
    fb = Feedback(source, month)
    lineage = {}
    if "lineage.files" in present:
        for name, sha, *counts, loaded in _rows(
            conn,
            "SELECT file_name, sha256, rows_read, rows_staged, rows_quarantined, rows_ignored, "
            "loaded_at FROM lineage.files WHERE source = ? AND month = ? ORDER BY file_name",
            [source.id, month],
        ):
            lineage[(name, sha)] = (counts, loaded)
    refused = {}
    if "lineage.refusals" in present:
        for name, sha, problem, column in _rows(
            conn,
            "SELECT file_name, sha256, problem, column_title FROM lineage.refusals "
            "WHERE source = ? AND month = ?",
            [source.id, month],
        ):
            refused[(name, sha)] = refusal_reason(problem, column, source)
    _files(fb, landing, lineage, refused)
    fb.refusals = [
        (_shown(name), _sentence([why]), _sentence([fix]))
        for (name, _), (why, fix) in refused.items()
    ]
    if f"quarantine.{source.id}" in present:
        for name, row, reasons in _rows(
            conn,
            f"SELECT file_name, row_number, reasons FROM quarantine.{source.id} "
            "WHERE month = ? ORDER BY file_name, row_number",
            [month],
        ):
            said = [row_reason(source, r) for r in sorted(reasons)]
            fixes = list(dict.fromkeys(fix for _, fix in said))
            fb.rows.append((_shown(name), row, _sentence(w for w, _ in said), _sentence(fixes)))
    if "lineage.files" in present:
        _drift_and_volume(fb, *delivery_history(conn, source.id, month))
    else:
        fb.columns_note = fb.volume_note = "aucune livraison intégrée à ce jour"
    if "marts.indicators" in present:
        seen = dict(
            _rows(
                conn,
                "SELECT indicator, value FROM marts.indicators WHERE month = ? AND dimension = ? "
                "AND indicator IN ('households_seen_by_source', 'households_seen_only_by_source')",
                [month, f"source={source.id}"],
            )
        )
        if seen:
            fb.seen = int(seen.get("households_seen_by_source", 0))
            fb.seen_only = int(seen.get("households_seen_only_by_source", 0))
    fb.to_do = _to_do(fb)
    return fb


def _files(fb: Feedback, landing: Path, lineage: dict, refused: dict) -> None:
    delivered = {}
    for path in delivered_files(landing, fb.source, fb.month):
        name = path.relative_to(landing).as_posix()
        delivered[(name, sha256_of(path))] = datetime.fromtimestamp(path.stat().st_mtime)
    for key, when in delivered.items():
        if key in lineage:
            counts, _ = lineage[key]
            fb.files.append(ReceivedFile(_shown(key[0]), when, "intégré", *counts))
        elif key in refused:
            fb.files.append(ReceivedFile(_shown(key[0]), when, "refusé"))
        elif refused:
            status = "non traité : la livraison du mois a été refusée (voir « Fichiers refusés »)"
            fb.files.append(ReceivedFile(_shown(key[0]), when, status))
        else:
            fb.files.append(ReceivedFile(_shown(key[0]), when, "en attente de traitement"))
    for key, (counts, loaded) in lineage.items():
        if key not in delivered:  # replaced or removed since it was read
            status = (
                "version précédente, toujours en vigueur (la nouvelle a été refusée)"
                if refused
                else "intégré (n'est plus dans le dépôt)"
            )
            fb.files.append(ReceivedFile(_shown(key[0]), loaded, status, *counts))


def _drift_and_volume(fb: Feedback, current: pl.DataFrame, before: pl.DataFrame) -> None:
    source = fb.source
    if not current.height:
        fb.columns_note = fb.volume_note = "pas de livraison intégrée ce mois : rien à comparer"
    elif not before.height:
        fb.columns_note = "première livraison : rien à comparer"
    else:
        drift = column_drift(current, before).metadata
        fb.columns += [(column_title(source, c), "nouvelle") for c in drift["columns_added"]]
        fb.columns += [(column_title(source, c), "absente") for c in drift["columns_missing"]]
        now = _unused(current["unmapped"][0])
        previous = _unused(before["unmapped"][-1])
        for digest in sorted(set(now) - set(previous)):
            fb.columns.append((_unused_label(now[digest], digest), "nouvelle, non utilisée"))
        for digest in sorted(set(previous) - set(now)):
            fb.columns.append((_unused_label(previous[digest], digest), "absente"))
        last = before["month"][-1]
        fb.columns_note = f"par rapport à la livraison de {month_name(last)} : " + (
            f"{len(fb.columns)} changement(s)" if fb.columns else "aucun changement"
        )
    trailing = before.tail(TRAILING_MONTHS)
    fb.volume = [(m, int(n)) for m, n in trailing.select("month", "rows_staged").iter_rows()]
    if current.height:
        fb.volume.append((fb.month, int(current["rows_staged"][0])))
        outcome = volume(current, before)
        if "ratio" in outcome.metadata:
            mean, ratio = outcome.metadata["trailing_mean"], outcome.metadata["ratio"]
            fb.volume_ok = outcome.passed
            fb.volume_note = (
                f"{thousands(int(current['rows_staged'][0]))} lignes intégrées contre "
                f"{thousands(round(mean))} en moyenne sur les {trailing.height} mois précédents "
                f"({percent(ratio - 1)})"
                + ("" if outcome.passed else f" : écart de plus de {percent(VOLUME_TOLERANCE)}")
            )
        else:
            fb.volume_note = "pas de mois précédent : rien à comparer"


def _unused(columns: pl.Series | None) -> dict[str, str]:
    """Keyed hash of an unused column's title -> its position."""
    found = {}
    for text in [] if columns is None else columns.to_list():
        parts = _UNUSED.match(text)
        if parts:
            found[parts["hash"]] = parts["place"]
    return found


def _unused_label(place: str, digest: str) -> str:
    return f"colonne {place} (titre non conservé, empreinte {digest[:8]})"


def _to_do(fb: Feedback) -> list[str]:
    todo = [f"Renvoyer « {name} » : {fix[:1].lower()}{fix[1:]}" for name, _, fix in fb.refusals]
    if not fb.files:
        todo.append(f"Aucun fichier reçu pour {month_name(fb.month)} : envoyez l'export du mois.")
    if fb.rows:
        todo.append(
            f"Corriger les {len(fb.rows)} ligne(s) écartée(s) dans votre logiciel (onglet "
            "« Lignes écartées », par numéro de ligne) : elles comptent au prochain envoi."
        )
    if fb.columns:
        todo.append(
            "Vérifier les colonnes qui ont changé depuis l'envoi précédent (onglet « Colonnes »)."
        )
    if not fb.volume_ok:
        todo.append(f"Vérifier que l'export est complet : {fb.volume_note}.")
    return todo or ["Rien à corriger ce mois-ci. Merci pour votre envoi."]


# ------------------------------------------------------------------ the workbook
_BOLD = Font(bold=True)
_TITLE = Font(bold=True, size=14)
_HEAD = PatternFill("solid", fgColor="DDEBF7")
_DATETIME = "dd/mm/yyyy hh:mm"


def _protected(count: int | None, min_cell: int) -> int | str:
    """A coverage count as a partner may read it: under MIN_CELL (zero aside) it tells about
    too few households, and the public figures keep it secret too."""
    if count is None:
        return "non calculé ce mois"
    return f"< {min_cell}" if 0 < count < min_cell else count


def write_workbook(fb: Feedback, path: Path, min_cell: int) -> Path:
    """The feedback as an .xlsx a partner opens: a summary, then one sheet per topic."""
    wb = openpyxl.Workbook()
    summary = wb.active
    summary.title = "Synthèse"
    _summary(summary, fb, min_cell)
    _table(
        wb.create_sheet("Fichiers reçus"),
        ["Fichier", "Reçu le", "Statut", "Lignes lues", "Intégrées", "Écartées", "Ignorées"],
        [
            [
                f.name,
                f.received,
                f.status,
                f.rows_read,
                f.rows_staged,
                f.rows_quarantined,
                f.rows_ignored,
            ]
            for f in fb.files
        ],
        "Aucun fichier reçu ce mois.",
    )
    _table(
        wb.create_sheet("Fichiers refusés"),
        ["Fichier", "Motif du refus", "Que faire"],
        [list(r) for r in fb.refusals],
        "Aucun fichier refusé ce mois.",
    )
    _table(
        wb.create_sheet("Lignes écartées"),
        ["Fichier", "Ligne", "Motif", "Que faire"],
        [list(r) for r in fb.rows],
        "Aucune ligne écartée ce mois.",
    )
    _table(
        wb.create_sheet("Colonnes"),
        ["Colonne", "Changement"],
        [list(c) for c in fb.columns],
        fb.columns_note[:1].upper() + fb.columns_note[1:] + ".",
    )
    _table(
        wb.create_sheet("Volume"),
        ["Mois", "Lignes intégrées"],
        [[month_name(m), n] for m, n in fb.volume],
        "Aucune livraison intégrée à ce jour.",
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    as_text(wb).save(partial)
    partial.replace(path)
    return path


def _summary(ws: Worksheet, fb: Feedback, min_cell: int) -> None:
    counts = fb.counts()
    ws.append([f"Retour sur vos fichiers de {month_name(fb.month)}"])
    ws["A1"].font = _TITLE
    ws.append([fb.source.label])
    ws.append([f"Produit le {datetime.now():%d/%m/%Y à %H:%M} par l'observatoire du SIAO."])
    ws.append([])
    lines = [
        ("Fichiers", None),
        ("Fichiers reçus", counts["files"]),
        ("Fichiers refusés", counts["files_refused"]),
        ("Lignes", None),
        ("Lignes lues", counts["rows_read"]),
        ("Lignes intégrées", counts["rows_staged"]),
        ("Lignes écartées (voir « Lignes écartées »)", counts["rows_quarantined"]),
        ("Lignes ignorées (vides, titres, totaux)", sum(f.rows_ignored or 0 for f in fb.files)),
        ("Colonnes", None),
        ("Par rapport à l'envoi précédent", fb.columns_note),
        ("Volume", None),
        (f"Par rapport aux {TRAILING_MONTHS} mois précédents", fb.volume_note),
        ("Ce que vos fichiers apportent", None),
        ("Ménages que vos fichiers nomment ce mois", _protected(fb.seen, min_cell)),
        ("dont ménages qu'aucun autre partenaire ne voit", _protected(fb.seen_only, min_cell)),
        ("À faire", None),
        *((f"{i}.", line) for i, line in enumerate(fb.to_do, 1)),
    ]
    for label, value in lines:
        ws.append([label] if value is None else [label, value])
        if value is None:
            ws.cell(ws.max_row, 1).font = _BOLD
            ws.cell(ws.max_row, 1).fill = _HEAD
    ws.column_dimensions["A"].width = 48
    ws.column_dimensions["B"].width = 90
    for row in ws.iter_rows(min_row=5, min_col=2, max_col=2):
        row[0].alignment = Alignment(wrap_text=True, vertical="top", horizontal="left")


def _table(ws: Worksheet, header: list[str], rows: list[list], empty: str) -> None:
    ws.append(header)
    for cell in ws[1]:
        cell.font, cell.fill = _BOLD, _HEAD
    for row in rows:
        ws.append(row)
    if not rows:
        ws.append([empty])
    ws.freeze_panes = "A2"
    for j, title in enumerate(header, 1):
        values = [title, *(r[j - 1] for r in rows)]
        width = max(len(str(v)) if v is not None else 0 for v in values)
        ws.column_dimensions[get_column_letter(j)].width = min(max(width + 2, 10), 80)
    for row in ws.iter_rows(min_row=2):
        for cell in row:
            if isinstance(cell.value, datetime):
                cell.number_format = _DATETIME


def publish_feedback(
    conn: duckdb.DuckDBPyConnection, landing: Path, folder: Path, month: date, min_cell: int
) -> dict[str, Feedback]:
    """Writes every source's feedback for `month` under `folder` (coverage counts under
    `min_cell` shown « < min_cell »); the feedback by source."""
    written = {}
    for source in all_sources().values():
        fb = partner_feedback(conn, landing, source, month)
        write_workbook(fb, feedback_path(folder, source.id, month), min_cell)
        written[source.id] = fb
    return written
