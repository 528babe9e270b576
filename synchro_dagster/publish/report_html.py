"""The report as one self-contained HTML page (inline CSS, charts as inline SVG, system fonts):
it opens offline, in any browser, and prints to A4 (headless Chromium makes the PDF from it).

Charts are written by hand as SVG rather than drawn with a plotting library: a few bar and
column charts need no new dependency, their text stays text (searchable, copyable, found in the
PDF) and the same input gives the same bytes.
"""

from __future__ import annotations

from html import escape
from pathlib import Path
from typing import TYPE_CHECKING

from synchro_dagster.publish import french
from synchro_dagster.publish.report_xlsx import ESTIMATE_TITLE, PALETTE, secret_note

if TYPE_CHECKING:
    from synchro_dagster.publish.report import Chart, Report

WIDTH = 700  # px: A4 less its margins at 96 dpi
CSS = """
@page { size: A4; margin: 12mm 12mm 14mm 12mm; }
* { box-sizing: border-box; }
body { font-family: "DejaVu Sans", "Liberation Sans", Arial, sans-serif; font-size: 10pt;
       color: #1a1a1a; margin: 0 auto; max-width: 720px; line-height: 1.35; }
.kicker { color: #1F4E79; font-weight: bold; margin: 0; letter-spacing: .02em; }
h1 { font-size: 20pt; margin: 2px 0 2px; color: #1F4E79; }
h2 { font-size: 12.5pt; margin: 18px 0 6px; color: #1F4E79; }
.issued { color: #595959; margin: 0 0 12px; }
.estimate { border-left: 4px solid #B0B7C3; padding: 2px 10px; margin: 10px 0; font-size: 9.5pt; }
.headline { font-size: 12pt; margin: 10px 0 12px; padding: 8px 10px; background: #EEF3F8;
            border-left: 4px solid #1F4E79; }
table.key { border-collapse: collapse; width: 100%; margin: 6px 0; }
table.key th, table.key td { border-bottom: 1px solid #d0d7de; padding: 5px 6px; }
table.key th { text-align: left; background: #DCE6F1; font-size: 9pt; }
table.key td.n, table.key th.n { text-align: right; white-space: nowrap; }
table.key tr.main td { font-weight: bold; }
table.key tr.part td:first-child { padding-left: 20px; color: #404040; }
.secret { color: #7F7F7F; font-style: italic; }
.note { color: #595959; font-size: 8.5pt; font-style: italic; }
.first { break-after: page; }
figure { margin: 0 0 14px; break-inside: avoid; }
figure svg { display: block; width: 100%; height: auto; }
.legend { display: flex; flex-wrap: wrap; gap: 2px 14px; font-size: 8.5pt; margin: 4px 0; }
.legend span { display: inline-flex; align-items: center; gap: 5px; }
.legend i { display: inline-block; width: 10px; height: 10px; }
figcaption { color: #595959; font-size: 8.5pt; font-style: italic; }
dl dt { font-weight: bold; margin-top: 8px; }
dl dd { margin: 2px 0 0 0; }
.method h3 { font-size: 10.5pt; margin: 10px 0 2px; }
.method p { margin: 0; }
"""


def write_html(report: Report, path: Path) -> None:
    path.write_text(page(report), encoding="utf-8")


def page(report: Report) -> str:
    month = french.month_name(report.month)
    n = report.min_cell
    rows = "".join(
        f'<tr class="{"part" if k.part else "main"}"><td>{escape(k.label)}</td>'
        f"{_td(k.now.text(n), not k.now.published)}"
        f"{_td(k.on_month.text, k.on_month.diff is None)}"
        f"{_td(k.on_year.text, k.on_year.diff is None)}</tr>"
        for k in report.key_figures
    )
    first, *others = report.charts
    definitions = "".join(
        f"<dt>{escape(label)} <span class='note'>({escape(unit)})</span></dt>"
        f"<dd>{escape(text)}</dd>"
        for label, unit, text in report.definitions
    )
    method = "".join(
        f"<h3>{escape(heading)}</h3><p>{escape(text)}</p>" for heading, text in report.method
    )
    return f"""<!doctype html>
<html lang="fr"><head><meta charset="utf-8">
<title>Synchrø — rapport mensuel — {escape(month)}</title>
<style>{CSS}</style></head>
<body>
<section class="first">
<p class="kicker">Synchrø — observation dynamique du sans-abrisme</p>
<h1>Rapport mensuel : {escape(month)}</h1>
<p class="issued">Édité le {french.day(report.issued)} · chiffres protégés par le secret
statistique · unité de compte : le ménage</p>
<p class="headline">{escape(report.headline)}</p>
<table class="key"><thead><tr><th>Indicateur</th><th class="n">{escape(month)}</th>
<th class="n">Sur un mois</th><th class="n">Sur un an</th></tr></thead>
<tbody>{rows}</tbody></table>
<p class="note">{escape(secret_note(n))}</p>
{figure(first, n)}
</section>
{_estimate(report)}
<section class="charts">{"".join(figure(c, n) for c in others)}</section>
<section class="definitions"><h2>Définitions</h2><dl>{definitions}</dl></section>
<section class="method"><h2>Note de méthode</h2>{method}</section>
</body></html>
"""


def _estimate(report: Report) -> str:
    if not report.estimate:
        return ""
    return (
        f'<section class="estimate"><h2>{escape(ESTIMATE_TITLE)}</h2>'
        f"<p>{escape(report.estimate)}</p></section>"
    )


def _td(text: str, secret: bool) -> str:
    return f'<td class="n{" secret" if secret else ""}">{escape(text)}</td>'


def figure(chart: Chart, min_cell: int) -> str:
    svg = _bars(chart, min_cell) if chart.kind == "bar" else _columns(chart)
    legend = (
        '<div class="legend">'
        + "".join(
            f'<span><i style="background:{_color(j)}"></i>{escape(name)}</span>'
            for j, (name, _) in enumerate(chart.series)
        )
        + "</div>"
        if len(chart.series) > 1
        else ""
    )
    return (
        f"<figure><h2>{escape(chart.title)}</h2>{svg}{legend}"
        f"<figcaption>{escape(_caption(chart, min_cell))}</figcaption></figure>"
    )


def _caption(chart: Chart, min_cell: int) -> str:
    hidden = [
        f"{name} ({sum(c.secret for c in cells)} sur {len(cells)})"
        for name, cells in chart.series
        if any(c.secret for c in cells)
    ]
    text = f"Unité : {chart.unit}."
    if hidden and chart.kind == "column":
        text += " Non tracé, secret statistique : " + " ; ".join(hidden) + "."
    return text


def _color(j: int) -> str:
    return PALETTE[j % len(PALETTE)]


def _scale(top: float) -> tuple[float, list[float]]:
    """A round axis maximum and its ticks for values up to `top`."""
    top = max(top, 1)
    raw = top / 5
    magnitude = 10 ** (len(str(int(raw))) - 1) if raw >= 1 else 1
    step = next(s * magnitude for s in (1, 2, 5, 10) if s * magnitude >= raw)
    ticks = [step * i for i in range(int(top // step) + 2)]
    return ticks[-1], ticks


def _columns(chart: Chart) -> str:
    """Vertical columns, clustered or stacked, one group per category (months)."""
    height, left, right, top, bottom = 280, 56, 8, 10, 34
    plot_w, plot_h = WIDTH - left - right, height - top - bottom
    values = [[c.value if c.published else 0 for c in cells] for _, cells in chart.series]
    by_category = list(zip(*values, strict=True)) if values else []
    peak = max((sum(v) if chart.stacked else max(v) for v in by_category), default=0)
    ymax, ticks = _scale(peak)
    out = [f'<svg viewBox="0 0 {WIDTH} {height}" role="img" aria-label="{escape(chart.title)}">']
    for t in ticks:
        y = top + plot_h - plot_h * t / ymax
        out.append(
            f'<line x1="{left}" x2="{WIDTH - right}" y1="{y:.1f}" y2="{y:.1f}" '
            'stroke="#e3e3e3"/>'
            f'<text x="{left - 6}" y="{y + 3.5:.1f}" font-size="10" text-anchor="end" '
            f'fill="#595959">{french.thousands(int(t))}</text>'
        )
    group = plot_w / max(len(chart.categories), 1)
    for i, (category, column) in enumerate(zip(chart.categories, by_category, strict=True)):
        x0 = left + i * group
        width = group * (0.6 if chart.stacked else 0.8 / len(column))
        base = 0.0
        for j, value in enumerate(column):
            h = plot_h * value / ymax
            x = x0 + group * 0.2 if chart.stacked else x0 + group * 0.1 + j * width
            y = top + plot_h - h - (plot_h * base / ymax if chart.stacked else 0)
            if value:
                out.append(
                    f'<rect x="{x:.1f}" y="{y:.1f}" width="{width:.1f}" height="{h:.1f}" '
                    f'fill="{_color(j)}"/>'
                )
            base += value if chart.stacked else 0
        out += [
            f'<text x="{x0 + group / 2:.1f}" y="{height - bottom + 13 + 11 * k}" font-size="9.5" '
            f'text-anchor="middle">{escape(part)}</text>'
            for k, part in enumerate(category.rsplit(" ", 1))  # 'févr.' above '2025'
        ]
    out.append(
        f'<line x1="{left}" x2="{WIDTH - right}" y1="{top + plot_h}" y2="{top + plot_h}" '
        'stroke="#8c8c8c"/></svg>'
    )
    return "".join(out)


def _wrap(text: str, width: int = 44) -> list[str]:
    lines, line = [], ""
    for word in text.split():
        if line and len(line) + 1 + len(word) > width:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}".strip()
    lines.append(line)
    return lines[:2] if len(lines) <= 2 else [lines[0], lines[1] + "…"]


def _bars(chart: Chart, min_cell: int) -> str:
    """Horizontal bars, clustered, one row per category; each bar says its figure, and a
    suppressed one says « < 11 » or « secret » where its bar would start."""
    left, right, bar, gap = 270, 60, 13, 10
    n = len(chart.series)
    row = max(n * bar + 4, 28) + gap
    height = row * len(chart.categories) + 6
    plot_w = WIDTH - left - right
    peak = max((c.value for _, cells in chart.series for c in cells if c.published), default=0)
    xmax, _ = _scale(peak)
    out = [f'<svg viewBox="0 0 {WIDTH} {height}" role="img" aria-label="{escape(chart.title)}">']
    for i, category in enumerate(chart.categories):
        y0 = 3 + i * row
        lines = _wrap(category)
        for k, line in enumerate(lines):
            y = y0 + (row - gap) / 2 + 4 + (k - (len(lines) - 1) / 2) * 12
            out.append(
                f'<text x="{left - 8}" y="{y:.1f}" font-size="10" text-anchor="end">'
                f"{escape(line)}</text>"
            )
        for j, (_, cells) in enumerate(chart.series):
            cell = cells[i]
            y = y0 + (row - gap - n * bar) / 2 + j * bar
            w = plot_w * cell.value / xmax if cell.published else 0
            if w:
                out.append(
                    f'<rect x="{left}" y="{y:.1f}" width="{w:.1f}" height="{bar - 2}" '
                    f'fill="{_color(j)}"/>'
                )
            style = "" if cell.published else ' font-style="italic" fill="#7F7F7F"'
            out.append(
                f'<text x="{left + w + 4:.1f}" y="{y + bar - 3.5:.1f}" font-size="9.5"{style}>'
                f"{escape(cell.text(min_cell))}</text>"
            )
    out.append(f'<line x1="{left}" x2="{left}" y1="0" y2="{height}" stroke="#8c8c8c"/></svg>')
    return "".join(out)
