"""The monthly steering report, in French, built from the protected public table only.

For each month: `synchro_<YYYY-MM>.xlsx` (native Excel charts reading the workbook's own cells),
`synchro_<YYYY-MM>.html` (self-contained: inline CSS and SVG charts, nothing fetched when it is
opened) and `synchro_<YYYY-MM>.pdf`, printed from the HTML by headless Chromium. Without
Chromium the xlsx and HTML are still written and the result says why there is no PDF.

A suppressed figure is never shown as a number: « < 11 » (primary secret: fewer than MIN_CELL)
or « secret » (secondary secret: hidden so that the first cannot be recomputed). A change is
shown only between two published figures.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import date
from pathlib import Path

import polars as pl

from synchro_dagster.indicators.definitions import INDICATORS, definitions_frame
from synchro_dagster.publish import french
from synchro_dagster.publish.labels import (
    code_tables,
    family_label,
    indicator_label,
    indicator_unit,
    modality_label,
)
from synchro_dagster.publish.report_html import write_html
from synchro_dagster.publish.report_xlsx import write_workbook
from synchro_dagster.settings import Settings

PUBLISHED, PRIMARY, SECONDARY, ABSENT = "publie", "secret_primaire", "secret_secondaire", "absent"
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",  # runs as root in CI and in containers
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
)
HISTORY = 12  # months on the charts over time
TITLE = "Synchrø — observation dynamique du sans-abrisme"


@dataclass(frozen=True)
class Cell:
    """One figure as published: its value, or why there is none."""

    value: int | None
    status: str  # PUBLISHED, PRIMARY, SECONDARY, or ABSENT (the month is not in the table)
    count: bool = True  # False for a duration: its primary secret is its few households

    @property
    def published(self) -> bool:
        return self.status == PUBLISHED and self.value is not None

    @property
    def secret(self) -> bool:
        return self.status in (PRIMARY, SECONDARY)

    def text(self, min_cell: int) -> str:
        """What a reader sees: '1 234', '< 11', 'secret' or 'n.d.' (not available)."""
        if self.published:
            return french.thousands(self.value)
        if self.status == PRIMARY and self.count:
            return f"< {min_cell}"
        return "secret" if self.secret else "n.d."


@dataclass(frozen=True)
class Change:
    """A change between two figures, known only when both are published."""

    diff: int | None
    share: float | None  # diff / before; None when before is 0 or unknown
    text: str  # '+59 (+2,8 %)', 'secret', 'n.d.'

    @classmethod
    def between(cls, now: Cell, before: Cell) -> Change:
        if now.status == ABSENT or before.status == ABSENT:
            return cls(None, None, "n.d.")
        if not (now.published and before.published):
            return cls(None, None, "secret")
        diff = now.value - before.value
        share = diff / before.value if before.value else None
        text = french.signed(diff) + (f" ({french.percent(share)})" if share is not None else "")
        return cls(diff, share, text)


def previous(month: date, months: int = 1) -> date:
    index = month.year * 12 + month.month - 1 - months
    return date(index // 12, index % 12 + 1, 1)


class Figures:
    """The public table, read by month, indicator and modality."""

    def __init__(self, public: pl.DataFrame, min_cell: int) -> None:
        self.min_cell = min_cell
        self.months = sorted({date.fromisoformat(f"{m}-01") for m in public["mois"]})
        self._cells = {
            (r["mois"], r["indicateur"], r["dimension"], r["modalite"]): Cell(
                r["valeur"], r["statut"]
            )
            for r in public.iter_rows(named=True)
        }
        self._order = {
            (family, code): i
            for i, (family, code) in enumerate(code_tables().select("family", "code").iter_rows())
        }
        self._durations = {i.name for i in INDICATORS if indicator_unit(i.name) == "mois"}

    def cell(
        self, month: date, indicator: str, dimension: str | None = None, modality: str | None = None
    ) -> Cell:
        if month not in self.months:
            return Cell(None, ABSENT)
        found = self._cells.get((f"{month:%Y-%m}", indicator, dimension, modality))
        duration = indicator in self._durations
        if found is not None:
            return Cell(found.value, found.status, count=not duration)
        # a count with no row is zero; a duration with none was not computed (nobody to measure)
        return Cell(None, ABSENT, count=False) if duration else Cell(0, PUBLISHED)

    def modalities(self, indicator: str, dimension: str, months: Iterable[date]) -> list[str]:
        """The modalities of a dimension seen in `months`, in labels.py's order."""
        wanted = {f"{m:%Y-%m}" for m in months}
        found = {
            key[3]
            for key in self._cells
            if key[0] in wanted and key[1] == indicator and key[2] == dimension
        }
        return self.ordered(dimension, found)

    def ordered(self, dimension: str, codes: Iterable[str]) -> list[str]:
        """`codes` in labels.py's order (situations as in the domain's taxonomy…)."""
        return sorted(codes, key=lambda c: (self._order.get((dimension, c), len(self._order)), c))


@dataclass(frozen=True)
class KeyFigure:
    label: str
    now: Cell
    month_before: Cell
    year_before: Cell
    part: bool = False  # a part of the line above (indented)

    @property
    def on_month(self) -> Change:
        return Change.between(self.now, self.month_before)

    @property
    def on_year(self) -> Change:
        return Change.between(self.now, self.year_before)


@dataclass(frozen=True)
class Chart:
    """A table of categories by series, shown as a chart reading exactly these cells."""

    sheet: str  # its sheet in the workbook (at most 31 characters)
    title: str
    category_title: str
    categories: list[str]
    series: list[tuple[str, list[Cell]]]
    kind: str = "column"  # "column" (vertical) or "bar" (horizontal)
    stacked: bool = False
    unit: str = "ménages"


@dataclass(frozen=True)
class Report:
    month: date
    issued: date
    min_cell: int
    headline: str
    key_figures: list[KeyFigure]
    charts: list[Chart]
    definitions: list[tuple[str, str, str]]  # label, unit, definition
    method: list[tuple[str, str]]  # heading, paragraph
    estimate: str | None = None  # the estimate of the unseen, apart from every count

    @property
    def name(self) -> str:
        return f"synchro_{self.month:%Y-%m}"

    @property
    def secret_cells(self) -> int:
        """Suppressed figures the report shows (key figures and chart cells)."""
        cells = [k.now for k in self.key_figures]
        cells += [c for chart in self.charts for _, values in chart.series for c in values]
        return sum(c.secret for c in cells)


def _key_figures(f: Figures, month: date) -> list[KeyFigure]:
    def line(label: str, indicator: str, dim: str | None = None, mod: str | None = None, **kw):
        return KeyFigure(
            label,
            f.cell(month, indicator, dim, mod),
            f.cell(previous(month), indicator, dim, mod),
            f.cell(previous(month, 12), indicator, dim, mod),
            **kw,
        )

    window = [month, previous(month), previous(month, 12)]
    kinds = [m for m in f.modalities("outflow_households", "type", window) if "to_housing" in m]
    housed = [
        KeyFigure(
            "dont sorties vers un logement",
            *(_sum(f.cell(m, "outflow_households", "type", k) for k in kinds) for m in window),
            part=True,
        )
    ]
    housed += [
        line(f"— {_lower(modality_label('type', k))}", "outflow_households", "type", k, part=True)
        for k in kinds
    ]
    heads = ("stock_households", "stock_persons", "inflow_households", "outflow_households")
    return [*(line(indicator_label(i), i) for i in heads), *housed]


def _sum(cells: Iterable[Cell]) -> Cell:
    """The sum of published parts; « secret » when any part is suppressed (the sum may be 11
    or more: it is not a primary secret, only unknown)."""
    cells = list(cells)
    if any(c.status == ABSENT for c in cells):
        return Cell(None, ABSENT)
    if not all(c.published for c in cells):
        return Cell(None, SECONDARY)
    return Cell(sum(c.value for c in cells), PUBLISHED)


def _lower(label: str) -> str:
    return label[0].lower() + label[1:]


def _headline(f: Figures, month: date) -> str:
    """One sentence of the month's situation, from published figures only."""
    stock, persons = f.cell(month, "stock_households"), f.cell(month, "stock_persons")
    before = f.cell(previous(month), "stock_households")
    if not stock.published:
        return f"Fin {french.month_name(month)} : le nombre de ménages sans logement est secret."
    text = f"Fin {french.month_name(month)}, {french.thousands(stock.value)} ménages"
    if persons.published:
        text += f" ({french.thousands(persons.value)} personnes)"
    text += " sont sans logement sur le territoire"
    if before.published:
        diff = stock.value - before.value
        text += (
            f", {french.thousands(abs(diff))} de {'plus' if diff > 0 else 'moins'} qu'un mois "
            "plus tôt"
            if diff
            else ", autant qu'un mois plus tôt"
        )
    return text + "."


def _over_time(
    f: Figures, months: list[date], sheet: str, title: str, lines: list[tuple[str, str]], unit: str
) -> Chart:
    return Chart(
        sheet,
        title,
        "Mois",
        [french.month_short(m) for m in months],
        [(label, [f.cell(m, indicator) for m in months]) for label, indicator in lines],
        unit=unit,
    )


def _by_modality(
    f: Figures, month: date, sheet: str, title: str, dimension: str, series: list[tuple[str, str]]
) -> Chart:
    codes = f.ordered(
        dimension, {c for _, i in series for c in f.modalities(i, dimension, [month])}
    )
    return Chart(
        sheet,
        title,
        family_label(dimension),
        [modality_label(dimension, c) for c in codes],
        [(label, [f.cell(month, i, dimension, c) for c in codes]) for label, i in series],
        kind="bar",
    )


def _flows_by_type(f: Figures, month: date) -> Chart:
    parts = [
        (f"{word} : {_lower(modality_label('type', t))}", indicator, t)
        for word, indicator in (("Entrée", "inflow_households"), ("Sortie", "outflow_households"))
        for t in f.modalities(indicator, "type", [month])
    ]
    return Chart(
        "Flux par type",
        f"Entrées et sorties de {french.month_name(month)}, par type",
        family_label("type"),
        [label for label, _, _ in parts],
        [("Ménages", [f.cell(month, indicator, "type", t) for _, indicator, t in parts])],
        kind="bar",
    )


def _charts(f: Figures, month: date) -> list[Chart]:
    months = [m for m in f.months if previous(month, HISTORY) < m <= month]
    situations = f.modalities("stock_households", "situation", months)
    # the first month observed counts its whole stock as an inflow: not a flow worth drawing
    flow_months = [m for m in months if m != f.months[0]] or months
    return [
        Chart(
            "Situations",
            f"Ménages sans logement par situation, sur {len(months)} mois",
            "Mois",
            [french.month_short(m) for m in months],
            [
                (
                    modality_label("situation", s),
                    [f.cell(m, "stock_households", "situation", s) for m in months],
                )
                for s in situations
            ],
            stacked=True,
        ),
        _over_time(
            f,
            flow_months,
            "Entrées et sorties",
            f"Entrées et sorties, sur {len(flow_months)} mois",
            [("Entrées", "inflow_households"), ("Sorties", "outflow_households")],
            "ménages",
        ),
        _flows_by_type(f, month),
        _over_time(
            f,
            months,
            "Délai d'accès au logement",
            "Délai entre le premier repérage et le logement (ménages logés dans le mois)",
            [
                ("Durée moyenne", "mean_months_to_housing"),
                ("Durée médiane", "median_months_to_housing"),
            ],
            "mois",
        ),
        _by_modality(
            f,
            month,
            "Demandes et réponses",
            f"Demandes en cours et demandes ayant reçu une réponse, {french.month_name(month)}",
            "need",
            [
                ("Ménages ayant une demande en cours", "households_with_open_request"),
                ("Ménages dont la demande a reçu une réponse", "requests_answered"),
            ],
        ),
        _over_time(
            f,
            months,
            "115 et prioritaires",
            f"Demandes au 115 non pourvues et ménages prioritaires en attente, sur {len(months)} "
            "mois",
            [
                ("Demandes au 115 non pourvues", "urgence_requests_not_fulfilled"),
                ("Ménages prioritaires non encore logés", "priority_not_housed"),
            ],
            "demandes ou ménages",
        ),
        _by_modality(
            f,
            month,
            "Couverture par source",
            f"Ménages repérés par chaque source, {french.month_name(month)}",
            "source",
            [
                ("Repérés par la source", "households_seen_by_source"),
                ("Repérés par elle seule", "households_seen_only_by_source"),
            ],
        ),
    ]


def _definitions() -> list[tuple[str, str, str]]:
    """Every indicator's French definition, from the text marts.indicator_definitions holds."""
    return [
        (indicator_label(r["indicator"]), indicator_unit(r["indicator"]), r["definition_fr"])
        for r in definitions_frame().iter_rows(named=True)
    ]


def _method(settings: Settings, min_cell: int) -> list[tuple[str, str]]:
    n, lookback = settings.inactivity_days, settings.lookback_months
    return [
        (
            "Sources",
            "Chaque mois, les partenaires (115, SI-SIAO, maraudes, accueils de jour, "
            "hébergeurs, logement accompagné, SYPLO, SNE, commission DALO) transmettent leurs "
            "fichiers au SIAO. Chaque ménage est compté une seule fois, quel que soit le nombre "
            "de sources qui le citent ; l'unité de compte est le ménage, les personnes sont un "
            "second chiffre.",
        ),
        (
            "Fenêtre d'inactivité",
            f"Un ménage est compté sans logement en fin de mois quand au moins un enregistrement "
            f"daté des {n} derniers jours le place dans une situation de sans-logement et "
            "qu'aucune source n'a signalé depuis une sortie vers un logement, un décès ou un "
            f"départ. Sans nouvelle pendant {n} jours, il sort du stock (« sans nouvelles ») : "
            "un ménage parti sans qu'aucune source ne le dise reste compté jusque-là.",
        ),
        (
            "Période de recul",
            f"Un ménage qui entre est « nouvellement repéré » quand aucune source ne l'a cité "
            f"dans les {lookback} mois précédents ; sinon il revient d'un logement ou d'une "
            "période sans nouvelles. Stock du mois = stock du mois précédent + entrées − "
            "sorties, exactement.",
        ),
        (
            "Secret statistique",
            f"Toute case comptant moins de {min_cell} ménages ou personnes, zéro excepté, est "
            f"masquée et notée « < {min_cell} » (secret primaire) ; un zéro est publié. "
            "D'autres cases sont masquées et notées « secret » (secret secondaire) pour "
            "qu'aucune case masquée ne puisse être recalculée, même à peu près, à partir des "
            "totaux, des autres répartitions ou des autres mois (stock, entrées et sorties se "
            f"tiennent d'un mois à l'autre). Les durées et médianes mesurées sur moins de "
            f"{min_cell} ménages ne sont pas publiées (« secret »). Une évolution n'est donnée "
            "qu'entre deux chiffres publiés ; les cases masquées ne sont pas tracées sur les "
            "graphiques. Ce rapport ne lit que la table publique protégée.",
        ),
        (
            "Limites de l'identification",
            "Les personnes sont reconnues d'une source et d'un mois à l'autre sur des jetons "
            "pseudonymisés (nom, prénom, date de naissance), jamais sur les noms en clair. Ce "
            "rapprochement n'est pas parfait. Mesuré sur un territoire simulé de 2 000 ménages, "
            "le stock de ménages est surestimé de 1,6 % à 3,7 % selon le mois et celui des "
            "personnes de 0,6 % à 2,2 %. Environ 1,5 % du stock sont des « fragments » : une "
            "personne que l'identification n'a pas reconnue (le plus souvent un enregistrement "
            "de maraude ou d'accueil de jour avec une faute de frappe et sans date de "
            "naissance) forme un ménage à part, compté le plus souvent à la rue. Les entrées "
            "sont surestimées de 7 % à 21 %, la rue et le squat de 8 % à 24 %, et les sorties "
            "s'écartent de −4 % à +39 %. Sur un territoire simulé aux noms plus concentrés, "
            "l'écart sur les personnes atteint +11,6 % le premier mois et reste sous +3,7 % à "
            "partir du troisième.",
        ),
    ]


def estimate_text(estimates: pl.DataFrame | None, month: date) -> str | None:
    """The month's estimate in plain French, from the public estimations (rounded, with their
    interval): what it says, and that it is not a count."""
    if estimates is None:
        return None
    rows = {
        r["indicateur"]: r
        for r in estimates.filter(pl.col("mois") == f"{month:%Y-%m}").iter_rows(named=True)
    }
    if not rows:
        return None
    total, unseen = rows.get("estimated_households_total"), rows.get("estimated_households_unseen")
    n = french.thousands
    if total is None or unseen is None:  # the month's lists could not support the estimate
        text = (
            f"Pas d'estimation des ménages qu'aucun partenaire n'a vus en "
            f"{french.month_name(month)} : les listes des partenaires ne se recoupent pas assez "
            "ce mois-ci pour l'estimer de façon fiable. Les comptages de ce rapport n'en "
            "dépendent pas."
        )
    else:
        text = (
            f"Fin {french.month_name(month)}, environ {n(total['valeur'])} ménages seraient sans "
            f"logement sur le territoire, vus ou non par les partenaires (entre "
            f"{n(total['borne_basse'])} et {n(total['borne_haute'])}, avec 95 % de confiance), "
            f"dont environ {n(unseen['valeur'])} qu'aucun partenaire n'a vus dans le mois (entre "
            f"{n(unseen['borne_basse'])} et {n(unseen['borne_haute'])}). C'est une estimation "
            "statistique, tirée du recoupement des listes des partenaires, pas un comptage : elle "
            "est arrondie à la dizaine et n'entre dans aucun total ni aucune évolution de ce "
            "rapport. Elle ne voit pas les ménages qu'aucun service ne peut rencontrer."
        )
    stock = rows.get("stock_households")
    if stock is not None:
        text += (
            f" Incertitude de l'identification : selon les rapprochements douteux, le stock "
            f"serait compris entre {n(stock['borne_basse'])} et {n(stock['borne_haute'])} "
            "ménages."
        )
    return text


def build_report(
    figures: Figures,
    month: date,
    issued: date,
    settings: Settings,
    estimates: pl.DataFrame | None = None,
) -> Report:
    """The report of `month`, from the public tables' figures only."""
    estimate = estimate_text(estimates, month)
    return Report(
        month=month,
        issued=issued,
        min_cell=figures.min_cell,
        headline=french.typeset(_headline(figures, month)),
        key_figures=_key_figures(figures, month),
        charts=_charts(figures, month),
        definitions=[(label, unit, french.typeset(text)) for label, unit, text in _definitions()],
        method=[(head, french.typeset(text)) for head, text in _method(settings, figures.min_cell)],
        estimate=french.typeset(estimate) if estimate else None,
    )


def find_chromium() -> str | None:
    """The first Chromium (or Chrome) on the PATH."""
    return next(filter(None, map(shutil.which, CHROMIUM_NAMES)), None)


def print_pdf(chromium: str, html: Path, pdf: Path, timeout: int = 120) -> str | None:
    """Prints `html` to `pdf` with headless Chromium; None on success, else why not."""
    partial = pdf.with_name(f".{pdf.name}.partial")
    partial.unlink(missing_ok=True)
    with tempfile.TemporaryDirectory(prefix="synchro-chromium-") as profile:
        try:
            done = subprocess.run(
                [
                    chromium,
                    *CHROMIUM_FLAGS,
                    f"--user-data-dir={profile}",
                    "--no-pdf-header-footer",
                    f"--print-to-pdf={partial}",
                    html.resolve().as_uri(),
                ],
                capture_output=True,
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired:
            return f"{chromium} did not finish printing {html.name} within {timeout} s"
    if done.returncode or not partial.is_file() or not partial.stat().st_size:
        partial.unlink(missing_ok=True)
        return f"{chromium} exited with code {done.returncode} and wrote no PDF for {html.name}"
    os.replace(partial, pdf)
    return None


@dataclass(frozen=True)
class Written:
    months: list[str]  # the months written (the others were already as they would be)
    files: list[Path]
    pdf_problem: str | None  # why PDFs are missing; None when every PDF was printed
    secret_cells: int  # suppressed figures shown in the last month's report


NO_CHROMIUM = (
    "no PDF: Chromium was not found on the PATH (tried {names}). Install it (Debian: apt-get "
    "install chromium) and refresh publish/monthly_report; the xlsx and HTML were written."
)


# month -> what its files were written from (`_written_from`), beside the reports: a month
# whose report would come out the same, files all there, is not written again
WRITTEN_FROM = ".written_from.json"
_WRITERS = ("report", "report_html", "report_xlsx", "xlsx", "french", "labels")


def _written_from(report: Report, pdf: bool, code: bytes) -> str:
    """The report's content, its date of issue aside, and the code that writes its files."""
    text = f"{replace(report, issued=date.min)!r}|pdf={pdf}".encode()
    return hashlib.sha256(code + text).hexdigest()


def write_reports(
    public: pl.DataFrame,
    out_dir: Path,
    settings: Settings,
    issued: date,
    months: list[date] | None = None,
    estimates: pl.DataFrame | None = None,
) -> Written:
    """Writes the xlsx, HTML and PDF of every month of `public` (or of `months`) into
    `out_dir`, with the month's estimate from the public `estimates` if given; each file
    replaces its previous version at once. A month whose report would say exactly what its
    files already say (figures, estimate, method, code) keeps them, and its date of issue."""
    figures = Figures(public, settings.min_cell)
    chromium = find_chromium()
    problems = [] if chromium else [NO_CHROMIUM.format(names=", ".join(CHROMIUM_NAMES))]
    out_dir.mkdir(parents=True, exist_ok=True)
    ledger = out_dir / WRITTEN_FROM
    done: dict[str, str] = json.loads(ledger.read_text()) if ledger.is_file() else {}
    code = b"".join(Path(__file__).with_name(f"{m}.py").read_bytes() for m in _WRITERS)
    files: list[Path] = []
    written: list[str] = []
    report = None
    for month in months or figures.months:
        report = build_report(figures, month, issued, settings, estimates)
        base = out_dir / report.name
        key = _written_from(report, chromium is not None, code)
        wanted = (".xlsx", ".html", ".pdf") if chromium else (".xlsx", ".html")
        if done.get(report.name) == key and all(base.with_suffix(s).is_file() for s in wanted):
            continue
        done.pop(report.name, None)
        for suffix, write in ((".xlsx", write_workbook), (".html", write_html)):
            partial = out_dir / f".{report.name}{suffix}.partial"
            write(report, partial)
            os.replace(partial, base.with_suffix(suffix))
            files.append(base.with_suffix(suffix))
        problem = None
        if chromium:
            problem = print_pdf(chromium, base.with_suffix(".html"), base.with_suffix(".pdf"))
            problems += [problem] if problem else []
            files += [] if problem else [base.with_suffix(".pdf")]
        if not problem:  # a PDF that failed is tried again next time
            done[report.name] = key
        written.append(f"{month:%Y-%m}")
    partial = out_dir / f"{WRITTEN_FROM}.partial"
    partial.write_text(json.dumps(done, indent=1, sort_keys=True))
    os.replace(partial, ledger)
    return Written(
        written,
        files,
        problems[0] if problems else None,
        report.secret_cells if report else 0,
    )
