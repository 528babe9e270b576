"""From a partner's raw cells to canonical, typed fields, with a reason for every row it cannot use.

Dates are read whatever the partner's habit (Excel date cells, bare serial
numbers, dd/mm/yyyy, dd/mm/yy, yyyy-mm-dd); codes and labels go through the
source's mapping; "NOM Prénom" in one cell is split; an age stays an age
when there is no birth date. Cleartext identity leaves this module only
toward tokenisation.
"""

from __future__ import annotations

import fnmatch
from datetime import date, timedelta

import polars as pl

from synchro_dagster.identity.normalise import PARTICLES
from synchro_dagster.sources.spec import (
    CODED_FIELDS,
    DATE_FIELDS,
    FIELDS,
    PERSONNE_SEULE,
    Source,
    normalise_label,
)

EXCEL_EPOCH = date(1899, 12, 30)
MAX_AGE = 110
MAX_TEXT_CHARS = 100  # no name or reference is longer; a longer cell is pasted text
# the partner's identifying text: a cell a spreadsheet would run as a formula is not a name
TYPED_TEXT = ("last_name", "first_name", "birth_name", "full_name", "record_ref", "household_ref")
FORMULA_START = r"^\s*(?:[=+@]|-[^\d\s])"
_TIME = r"(?:[ T]+\d{1,2}[:hH]\d{2}(?::\d{2})?)?"  # "03/02/2025 14:30": a date-time cell as text
PROGRAMME_SITUATION = {
    "CHU": "MISE_ABRI",
    "HOTEL": "HOTEL",
    "CHRS": "HEB_INSERTION",
    "STABILISATION": "HEB_INSERTION",
    "CADA": "ASILE",
    "HUDA": "ASILE",
    "IML": "LOG_TEMP",
    "PENSION_DE_FAMILLE": "LOGE",
    "RESIDENCE_SOCIALE": "LOGE",
    "UN_CHEZ_SOI_DABORD": "LOGE",
}


def month_end(month: date) -> date:
    return (month.replace(day=28) + timedelta(days=4)).replace(day=1) - timedelta(days=1)


def parse_date(raw: pl.Expr) -> pl.Expr:
    """A calendar date from any of the forms partners send; null when it is none of them."""
    s = raw.str.strip_chars()
    serial = s.str.extract(r"^(\d{1,5})(?:\.0+)?$", 1).cast(pl.Int64, strict=False)
    iso = s.str.extract(r"^(\d{4}-\d{2}-\d{2})", 1)
    slash4 = s.str.extract(rf"^(\d{{1,2}}[/.-]\d{{1,2}}[/.-]\d{{4}}){_TIME}$", 1)
    slash2 = s.str.extract(rf"^(\d{{1,2}}[/.-]\d{{1,2}}[/.-]\d{{2}}){_TIME}$", 1)
    slash4, slash2 = (d.str.replace_all(r"[.-]", "/") for d in (slash4, slash2))
    return pl.coalesce(
        iso.str.strptime(pl.Date, "%Y-%m-%d", strict=False),
        slash4.str.strptime(pl.Date, "%d/%m/%Y", strict=False),
        slash2.str.strptime(pl.Date, "%d/%m/%y", strict=False),
        pl.when(serial.is_between(1, 80_000)).then(pl.lit(EXCEL_EPOCH) + pl.duration(days=serial)),
    )


def _normalised(values: pl.Series) -> pl.Series:
    distinct = values.drop_nulls().unique().to_list()
    table = {v: normalise_label(v) for v in distinct}
    return values.replace_strict(table, default=None, return_dtype=pl.String)


def code_lookup(raw: pl.Expr, mapping: dict[str, str]) -> pl.Expr:
    """Partner code or label -> canonical code: the whole label first, then its leading number."""
    table = {normalise_label(k): v for k, v in mapping.items()}
    label = raw.map_batches(_normalised, return_dtype=pl.String)
    whole = label.replace_strict(table, default=None, return_dtype=pl.String)
    number = label.str.extract(r"^(\d+)\b", 1).replace_strict(
        table, default=None, return_dtype=pl.String
    )
    return pl.coalesce(whole, number)


def split_full_name(full: pl.Expr) -> tuple[pl.Expr, pl.Expr]:
    """ "NOM Prénom": the leading upper-case words are the last name, the rest the first name.

    When everything is in upper case, the last word is taken as the first name. When the
    cell starts in title or lower case ("Da Costa Mai", "de la FONTAINE Marie"), its
    leading particles (`PARTICLES`: "Da", "de la", "Ben"...) and the word after them, or
    the upper-case words after them, are the last name (it was "Da" / "Costa Mai" before);
    without particles, the first word. Case cannot tell a surname "Le" from a particle:
    "Le Minh Tuan" reads "Le Minh" / "Tuan".
    """
    words = full.str.strip_chars().str.split(" ")
    is_upper = words.list.eval(
        (pl.element() == pl.element().str.to_uppercase())
        & pl.element().str.contains(r"[A-Za-zÀ-ÿ]")
    )

    def leading(flags: pl.Expr) -> pl.Expr:  # how many of the first elements are true
        return flags.list.eval(pl.element().cast(pl.Int8).cum_prod()).list.sum()

    n_upper = leading(is_upper)
    particles = leading(words.list.eval(pl.element().str.to_uppercase().is_in(PARTICLES)))
    upper_after = leading(is_upper.list.slice(particles, None))
    n_words = words.list.len()
    # upper-case words up to the end: the last one is the first name; a particle and one word
    # in title case ("De La Fontaine"): a last name alone
    cut = (
        pl.when(n_upper > 0)
        .then(pl.min_horizontal(n_upper, n_words - 1))
        .when(upper_after > 0)
        .then(pl.min_horizontal(particles + upper_after, n_words - 1))
        .otherwise(pl.min_horizontal(particles + 1, n_words))
        .clip(1, None)
    )
    last = words.list.slice(0, cut).list.join(" ")
    first = words.list.slice(cut, n_words).list.join(" ")
    return last.replace("", None), first.replace("", None)


_REASON_SEPARATOR = "\x1f"  # in no reason code


def _joined(reasons: list[pl.Expr]) -> pl.Expr:
    """A row's reasons that apply (not null), in order, as one string; null when none does."""
    joined = pl.concat_str(reasons, separator=_REASON_SEPARATOR, ignore_nulls=True)
    return pl.when(joined != "").then(joined)


def _reason_list(reasons: list[pl.Expr]) -> pl.Expr:
    """A row's reasons that apply, in order, as a list (empty when none does): joined then split,
    about ten times faster than a `concat_list` of dozens of literals broadcast to every row."""
    joined = _joined(reasons)
    return joined.str.split(_REASON_SEPARATOR).fill_null(pl.lit([], dtype=pl.List(pl.String)))


def _by_value(df: pl.DataFrame, computed: list[tuple[str, pl.Expr]]) -> pl.DataFrame:
    """`df` with `_<name>` for each (name, expression of that column alone), computed once per
    distinct value: a month's thousands of rows repeat a few dozen dates and codes."""
    for name, expr in computed:
        values = df.select(pl.col(name).unique()).with_columns(expr.alias(f"_{name}"))
        df = df.join(values, on=name, how="left", maintain_order="left", nulls_equal=True)
    return df


def file_constants(source: Source, file_name: str) -> dict[str, str]:
    """What the kind of file says (a provider's list is its programme and situation)."""
    name = file_name.rsplit("/", 1)[-1].lower()
    return next((k.constants for k in source.files if fnmatch.fnmatch(name, k.pattern.lower())), {})


def canonical(df: pl.DataFrame, source: Source, month: date) -> pl.DataFrame:
    """Typed canonical fields + `reasons` (list of row problems) for the rows of a month's files.

    `df` holds the raw String columns of `RawTable.frame` plus `file_name`; provenance columns
    (`file_name`, `file_sha256`, `row_number`) pass through.
    """
    for name in FIELDS:
        if name not in df.columns:
            df = df.with_columns(pl.lit(None, pl.String).alias(name))
    # judged as typed, before "NOM Prénom" is split: the reason names the partner's column
    typed = [
        pl.when(pl.col(name).str.contains(FORMULA_START)).then(pl.lit(f"formula:{name}"))
        for name in TYPED_TEXT
    ] + [
        pl.when(pl.col(name).str.len_chars() > MAX_TEXT_CHARS).then(pl.lit(f"too_long:{name}"))
        for name in TYPED_TEXT
    ]
    df = df.with_columns(_joined(typed).alias("_typed_reasons"))
    reasons: list[pl.Expr] = [pl.col("_typed_reasons")]

    # identity: "NOM Prénom" fills the separate columns where they are missing
    last_from_full, first_from_full = split_full_name(pl.col("full_name"))
    df = df.with_columns(
        pl.coalesce("last_name", last_from_full).alias("last_name"),
        pl.coalesce("first_name", first_from_full).alias("first_name"),
    )
    reasons.append(
        pl.when(pl.col("last_name").is_null() & pl.col("first_name").is_null()).then(
            pl.lit("no_identity")
        )
    )

    # dates
    end = month_end(month)
    typed = []
    empty = {name for name in df.columns if df[name].null_count() == df.height}
    for name in DATE_FIELDS:
        parsed = pl.lit(None, pl.Date) if name in empty else parse_date(pl.col(name))
        if name == "birth_date":  # a two-digit year is of the last century if not of this one
            two_digits = pl.col(name).str.contains(r"^\s*\d{1,2}[/.-]\d{1,2}[/.-]\d{2}\s*$")
            parsed = (
                pl.when(two_digits & (parsed > pl.lit(end)))
                .then(parsed.dt.offset_by("-100y"))
                .otherwise(parsed)
            )
        typed.append((name, parsed))
        reasons.append(
            pl.when(pl.col(name).is_not_null() & pl.col(f"_{name}").is_null()).then(
                pl.lit(f"unparseable_date:{name}")
            )
        )
    df = _by_value(df, typed)
    reasons.append(
        pl.when(pl.col("_event_date") > pl.lit(end)).then(pl.lit("date_after_month:event_date"))
    )

    # numbers: an age typed is kept when it is one a person can have
    typed_age = pl.col("age").str.extract(r"(-?\d+)", 1).cast(pl.Int64, strict=False)
    size = (
        pl.col("household_size")
        .str.extract(r"^(\d{1,2})(?:\.0+)?$", 1)
        .cast(pl.Int64, strict=False)
    )
    reasons.append(
        pl.when(pl.col("age").is_not_null() & pl.col("_typed_age").is_null()).then(
            pl.lit("unparseable_number:age")
        )
    )
    reasons.append(
        pl.when(pl.col("_typed_age").is_not_null() & pl.col("_age").is_null()).then(
            pl.lit("implausible_age:age")
        )
    )
    reasons.append(
        pl.when(pl.col("household_size").is_not_null() & pl.col("_household_size").is_null()).then(
            pl.lit("unparseable_number:household_size")
        )
    )
    df = df.with_columns(
        typed_age.alias("_typed_age"),
        pl.when(typed_age.is_between(0, MAX_AGE)).then(typed_age).alias("_age"),
        size.alias("_household_size"),
    )

    # codes
    coded = []
    for name in CODED_FIELDS:
        if name in source.values and name not in empty:
            mapped = code_lookup(pl.col(name), source.values[name])
            reasons.append(
                pl.when(pl.col(name).is_not_null() & pl.col(f"_{name}").is_null()).then(
                    pl.lit(f"unknown_code:{name}")
                )
            )
        else:
            mapped = pl.lit(None, pl.String)
        coded.append((name, mapped))
    df = _by_value(df, coded)

    by_file = {f: file_constants(source, f) for f in df["file_name"].unique().to_list()}
    for name in sorted({n for constants in by_file.values() for n in constants}):
        value = pl.col("file_name").replace_strict(
            {f: c.get(name) for f, c in by_file.items()}, default=None, return_dtype=pl.String
        )
        df = df.with_columns(pl.coalesce(pl.col(f"_{name}"), value).alias(f"_{name}"))
    situation = pl.coalesce(
        "_situation",
        pl.col("_programme").replace_strict(
            PROGRAMME_SITUATION, default=None, return_dtype=pl.String
        ),
    )
    composition = (
        pl.when(pl.col("_composition") == PERSONNE_SEULE)
        .then(
            pl.col("_sex").replace_strict(
                {"M": "homme_seul", "F": "femme_seule"}, default=None, return_dtype=pl.String
            )
        )
        .otherwise(pl.col("_composition"))
    )
    evidence = pl.coalesce(
        [pl.lit(end) if e == "month_end" else pl.col(f"_{e}") for e in source.evidence]
    )
    df = df.with_columns(evidence.alias("_evidence"))  # computed once, read twice below
    reasons.append(pl.when(pl.col("_evidence").is_null()).then(pl.lit("missing_date:event_date")))
    reasons.append(
        pl.when(
            (pl.col("_birth_date") > pl.lit(end))
            | (pl.col("_birth_date") > pl.col("_evidence"))
            | (pl.col("_birth_date") < pl.lit(end - timedelta(days=int(MAX_AGE * 365.25))))
        ).then(pl.lit("implausible_date:birth_date"))
    )

    placeholder = (pl.col("_birth_date").dt.day() == 1) & (pl.col("_birth_date").dt.month() == 1)
    return df.select(
        "file_name",
        "file_sha256",
        "row_number",
        pl.col("record_ref"),
        pl.col("household_ref"),
        pl.col("last_name"),
        pl.col("first_name"),
        pl.col("birth_name"),
        pl.col("_birth_date").alias("birth_date"),
        placeholder.fill_null(False).alias("birth_year_only"),
        pl.col("_age").alias("age"),
        pl.col("_sex").alias("sex"),
        pl.col("_role").alias("role"),
        composition.alias("composition"),
        pl.col("_household_size").alias("household_size"),
        situation.alias("situation"),
        pl.col("_evidence").alias("event_date"),
        pl.lit(source.need_type, pl.String).alias("need_type"),
        pl.col("_status").alias("need_status"),
        pl.col("_need_since").alias("need_since"),
        pl.when(pl.col("_response").is_not_null())
        .then(pl.col("_response") == "fulfilled")
        .alias("request_fulfilled"),
        pl.col("_programme").alias("programme"),
        pl.col("_entry_date").alias("entry_date"),
        pl.col("_exit_date").alias("exit_date"),
        pl.coalesce(
            "_destination",
            pl.when(pl.col("_exit_date").is_not_null()).then(pl.lit(source.exit_destination)),
        ).alias("exit_destination"),
        _reason_list(reasons).alias("reasons"),
    )
