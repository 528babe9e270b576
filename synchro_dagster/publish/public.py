"""The public indicators: every month of `marts.indicators`, protected (publish/disclosure.py),
in French, as one long table written to csv, parquet and xlsx. Figures anyone may be handed.

Beside them, `estimations.csv` / `.parquet`: the estimate of the households no partner saw
(docs/estimation.md) and the linkage range of the stock, inflow and outflow. An estimate is not
a count of households a partner saw: it stays out of the count table and of the relations the
disclosure audit protects, and is published rounded to the ten (its interval outwards) so that
nobody reads it as a count. A linkage range is published only next to a count that is."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import duckdb
import polars as pl

from synchro_dagster import warehouse
from synchro_dagster.publish import disclosure, labels
from synchro_dagster.publish.xlsx import workbook

FILES = ("indicators.csv", "indicators.parquet", "indicators.xlsx")
ESTIMATE_FILES = ("estimations.csv", "estimations.parquet")
ROUNDING = 10  # estimates are published to the ten: read as "about", never as a count
NATURE = {"estimation": "estimation", "linkage_range": "fourchette_appariement"}
ESTIMATE_LABELS = {
    "estimated_households_total": "Ménages sans logement, vus ou non par les partenaires "
    "(estimation)",
    "estimated_households_unseen": "Ménages qu'aucun partenaire n'a vus dans le mois (estimation)",
}
COLUMNS = {  # column -> its French header in the workbook
    "mois": "Mois",
    "indicateur": "Code de l'indicateur",
    "dimension": "Dimension",
    "modalite": "Code de la modalité",
    "valeur": "Valeur",
    "statut": "Statut",
    "libelle_indicateur": "Indicateur",
    "libelle_modalite": "Modalité",
}
STATUS_LABELS = {
    disclosure.PUBLISHED: "publié",
    disclosure.PRIMARY: "secret : moins de {min_cell} ménages",
    disclosure.SECONDARY: "secret : permettrait de recalculer une case secrète",
}


def indicator_cells(conn: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    """Every month's indicators: month, indicator, dimension, value."""
    return conn.sql(
        "SELECT month, indicator, dimension, value FROM marts.indicators "
        "ORDER BY month, indicator, dimension NULLS FIRST"
    ).pl()


def public_table(cells: pl.DataFrame, min_cell: int, lookback_months: int) -> pl.DataFrame:
    """The long table: one row per month, indicator and dimension; a suppressed value is null
    and its statut says why. Durations are rounded to whole months."""
    statuses = disclosure.protect(cells, min_cell, lookback_months)
    split = [labels.split_dimension(d) for d in cells["dimension"]]
    return pl.DataFrame(
        {
            "mois": cells["month"].dt.strftime("%Y-%m"),
            "indicateur": cells["indicator"],
            "dimension": [f for f, _ in split],
            "modalite": [v for _, v in split],
            "valeur": cells["value"].round(0).cast(pl.Int64),
            "statut": statuses,
            "libelle_indicateur": [labels.indicator_label(i) for i in cells["indicator"]],
            "libelle_modalite": [labels.dimension_label(d) for d in cells["dimension"]],
        },
        schema={c: pl.Int64 if c == "valeur" else pl.String for c in COLUMNS},
    ).with_columns(valeur=pl.when(pl.col("statut") == disclosure.PUBLISHED).then(pl.col("valeur")))


def estimate_cells(conn: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    """Every month's estimates and linkage ranges (empty before the first estimate)."""
    if "marts.estimates" not in warehouse.existing_tables(conn, "marts"):
        return pl.DataFrame(
            schema={"month": pl.Date, "indicator": pl.String, "kind": pl.String}
            | {c: pl.Float64 for c in ("value", "lower", "upper")}
        )
    return conn.sql(
        "SELECT month, indicator, kind, value, lower, upper FROM marts.estimates "
        "ORDER BY month, kind, indicator"
    ).pl()


def public_estimates(estimates: pl.DataFrame, public: pl.DataFrame) -> pl.DataFrame:
    """One row per month and figure: `nature` estimation (rounded to ROUNDING, the interval
    outwards) or fourchette_appariement (the published count and the range identity's doubts
    allow; left out when the count is secret)."""
    published = public.filter(
        (pl.col("statut") == disclosure.PUBLISHED) & pl.col("dimension").is_null()
    ).select(pl.col("mois"), pl.col("indicateur"), pl.col("valeur").alias("_count"))
    estimate = pl.col("kind") == "estimation"

    def rounded(column: str, how: str) -> pl.Expr:
        steps = pl.col(column) / ROUNDING
        steps = {"near": steps.round(0), "down": steps.floor(), "up": steps.ceil()}[how]
        return pl.when(estimate).then(steps * ROUNDING).otherwise(pl.col(column)).cast(pl.Int64)

    table = (
        estimates.with_columns(mois=pl.col("month").dt.strftime("%Y-%m"))
        .join(published, left_on=["mois", "indicator"], right_on=["mois", "indicateur"], how="left")
        .filter(estimate | pl.col("_count").is_not_null())
        .select(
            "mois",
            pl.col("indicator").alias("indicateur"),
            pl.col("kind").replace_strict(NATURE).alias("nature"),
            rounded("value", "near").alias("valeur"),
            rounded("lower", "down").alias("borne_basse"),
            rounded("upper", "up").alias("borne_haute"),
        )
    )
    return table.with_columns(
        libelle_indicateur=pl.col("indicateur").map_elements(
            lambda i: ESTIMATE_LABELS.get(i) or labels.indicator_label(i), return_dtype=pl.String
        )
    ).sort("mois", "nature", "indicateur")


def status_counts(table: pl.DataFrame) -> dict[str, int]:
    """Cells by statut (never a value)."""
    counts = dict(table.group_by("statut").len().iter_rows())
    statuses = (disclosure.PUBLISHED, disclosure.PRIMARY, disclosure.SECONDARY)
    return {s: int(counts.get(s, 0)) for s in statuses}


def write_public(
    table: pl.DataFrame, directory: Path, min_cell: int, estimates: pl.DataFrame | None = None
) -> list[Path]:
    """Writes the files (the estimations' too, if given) beside the target, then moves each in
    place: a reader never sees a half-written file, and a failure leaves the previous files as
    they were."""
    directory.mkdir(parents=True, exist_ok=True)
    names = FILES + (ESTIMATE_FILES if estimates is not None else ())
    with tempfile.TemporaryDirectory(dir=directory, prefix=".writing-") as tmp:
        staged = Path(tmp)
        # a BOM: Excel opens a UTF-8 csv with its accents only when the file starts with one
        table.write_csv(staged / FILES[0], separator=";", include_bom=True)
        table.write_parquet(staged / FILES[1])
        _write_xlsx(table, staged / FILES[2], min_cell)
        if estimates is not None:
            estimates.write_csv(staged / ESTIMATE_FILES[0], separator=";", include_bom=True)
            estimates.write_parquet(staged / ESTIMATE_FILES[1])
        for name in names:
            os.replace(staged / name, directory / name)
    return [directory / name for name in names]


def _write_xlsx(table: pl.DataFrame, path: Path, min_cell: int) -> None:
    book = workbook(path)
    header = book.add_format({"bold": True, "bg_color": "#DDE4EE", "text_wrap": True})
    number = book.add_format({"num_format": "#,##0"})
    sheet = book.add_worksheet("Indicateurs")
    order = ("mois", "libelle_indicateur", "libelle_modalite", "valeur", "statut")
    order += ("indicateur", "dimension", "modalite")
    widths = {"libelle_indicateur": 52, "libelle_modalite": 48, "statut": 44}
    for col, name in enumerate(order):
        sheet.write(0, col, COLUMNS[name], header)
        sheet.set_column(col, col, widths.get(name, 14), number if name == "valeur" else None)
    shown = table.select(order).with_columns(
        statut=pl.col("statut").replace_strict(
            {k: v.format(min_cell=min_cell) for k, v in STATUS_LABELS.items()}
        )
    )
    for row, values in enumerate(shown.iter_rows(), start=1):
        for col, value in enumerate(values):
            if value is not None:
                sheet.write(row, col, value)
    sheet.freeze_panes(1, 0)
    sheet.autofilter(0, 0, shown.height, len(order) - 1)
    notes = book.add_worksheet("Règles")
    notes.set_column(0, 0, 110)
    for row, line in enumerate(notes_text(min_cell)):
        notes.write(row, 0, line, header if row == 0 else None)
    book.close()


def notes_text(min_cell: int) -> list[str]:
    """The workbook's note on the rules, in French."""
    return [
        "Règles de diffusion des indicateurs publics",
        f"Aucune case ne décrit moins de {min_cell} ménages : une case non nulle qui compte "
        f"moins de {min_cell} ménages, personnes ou demandes (ou dont les ménages concernés "
        f"sont moins de {min_cell}) n'est pas publiée (secret primaire).",
        f"Les durées (médianes, moyennes) calculées sur moins de {min_cell} ménages ne sont "
        "pas publiées (secret primaire). Elles sont arrondies au mois entier.",
        "D'autres cases sont masquées pour qu'aucune case secrète ne puisse être recalculée, "
        "même approximativement, à partir des cases publiées (secret secondaire) : somme des "
        "modalités égale au total, catégories ETHOS égales à la somme de leurs situations, "
        "stock du mois = stock du mois précédent + entrées - sorties, personnes au moins "
        "aussi nombreuses que les ménages, et les autres relations décrites dans la "
        "documentation.",
        f"Garantie : pour toute case masquée, les valeurs compatibles avec ce qui est publié "
        f"couvrent un intervalle d'au moins {min_cell} unités.",
        "Un zéro est publié : il ne décrit aucun ménage.",
        "Mois au format AAAA-MM ; Valeur vide quand la case est masquée ; la colonne Statut "
        "dit pourquoi.",
    ]
