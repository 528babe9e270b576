"""One source, one month: read every delivered file, map, pseudonymise, validate, split good rows
from quarantined ones. Pure Python, no Dagster; the caller writes the result.

A file-level problem raises `FileRejected` for the whole source-month so that
nothing partial is ever written.
"""

from __future__ import annotations

import fnmatch
import functools
import hashlib
import inspect
import warnings
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path, PurePath

import pandera.polars as pa
import polars as pl

from synchro_dagster.identity.tokens import TOKEN_COLUMNS, keyed, tokenise
from synchro_dagster.ingest.canonical import canonical, month_end
from synchro_dagster.ingest.errors import FileRejected
from synchro_dagster.ingest.read import CSV_SUFFIXES, SPREADSHEET_SUFFIXES, read_table
from synchro_dagster.privacy.rules import Requests
from synchro_dagster.sources.spec import DATE_FIELDS, Source, normalise_label

PERIOD_MIN_ROWS = 5  # below this many dated rows, a file's period is not judged


@dataclass
class FileReport:
    file_name: str  # relative to the landing directory
    sha256: str
    size_bytes: int
    sheet: str | None = None
    header_row: int = 0
    rows_read: int = 0
    rows_staged: int = 0
    rows_quarantined: int = 0
    rows_ignored: int = 0
    rows_opposed: int = 0  # rows of persons who objected, dropped (privacy.subjects)
    headers: list[str] = field(default_factory=list)  # canonical fields found
    titles: dict[str, str] = field(default_factory=dict)  # canonical field -> partner's title
    unmapped_headers: list[str] = field(default_factory=list)


@dataclass
class StagedMonth:
    source: str
    month: date
    staged: pl.DataFrame
    quarantine: pl.DataFrame
    files: list[FileReport]
    model_version: str  # of the Pandera model the staged rows were validated by

    @property
    def rows_read(self) -> int:
        return sum(f.rows_read for f in self.files)

    @property
    def rejection_rate(self) -> float:
        return self.quarantine.height / self.rows_read if self.rows_read else 0.0


QUARANTINE_SCHEMA = {
    "source": pl.String,
    "month": pl.Date,
    "file_sha256": pl.String,
    "file_name": pl.String,
    "row_number": pl.Int64,
    "reasons": pl.List(pl.String),
}


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def month_folder(landing: Path, source_id: str, month: date) -> Path:
    return landing / month.strftime("%Y-%m") / source_id


READABLE_SUFFIXES = SPREADSHEET_SUFFIXES | CSV_SUFFIXES
_NOT_DELIVERIES = ("thumbs.db", "desktop.ini")  # what file managers leave in a folder


def _entries(landing: Path, source: Source, month: date) -> list[Path]:
    """What a partner left in the source's month folder (office lock files and hidden files
    aside), without entering links."""
    folder = month_folder(landing, source.id, month)
    if not folder.is_dir():
        return []
    return sorted(
        p
        for p in folder.rglob("*")
        if not p.name.startswith((".", "~$"))
        and p.name.lower() not in _NOT_DELIVERIES
        and not any(part.startswith(".") for part in p.relative_to(folder).parts[:-1])
    )


def _kind_matches(source: Source, name: str) -> bool:
    """The name fits one of the source's kinds of file, whatever readable format it is in: a
    « *.csv » source's `.txt` or `.xlsx`, a « *.xlsx » one's `.xls`."""
    file = PurePath(name.lower())
    for kind in source.files:
        pattern = PurePath(kind.pattern.lower())
        if fnmatch.fnmatch(file.name, pattern.name) or (
            {pattern.suffix, file.suffix} <= READABLE_SUFFIXES
            and fnmatch.fnmatch(file.stem, pattern.stem)
        ):
            return True
    return False


def _inside(path: Path, root: Path) -> bool:
    return path.resolve().is_relative_to(root.resolve())


def delivered_files(landing: Path, source: Source, month: date) -> list[Path]:
    """The files a partner delivered for a month: files inside the landing tree, of a
    readable format, named like one of the source's kinds. Anything else left in the folder
    is a `delivery_problem`, never silently skipped."""
    return [
        p
        for p in _entries(landing, source, month)
        if p.is_file()
        and _inside(p, landing)
        and p.suffix.lower() in READABLE_SUFFIXES
        and _kind_matches(source, p.name)
    ]


def delivery_problem(landing: Path, source: Source, month: date) -> FileRejected | None:
    """The first thing in the source's month folder that is not a delivery, as a refusal: a
    link out of the landing tree, a folder named like a file, a format not read, a file the
    source's kinds do not name."""
    folder = month_folder(landing, source.id, month)
    if folder.exists() and not _inside(folder, landing):
        return FileRejected(
            folder,
            "outside_landing",
            "the month folder is a link to a folder outside the landing directory; it is not read",
            "put a copy of the files themselves in the month's folder",
        )
    for p in _entries(landing, source, month):
        if not _inside(p, landing):
            return FileRejected(
                p,
                "outside_landing",
                "the file is a link to a place outside the landing directory; it is not read",
                "put a copy of the file itself in the month's folder",
            )
        if p.is_dir():
            if p.suffix.lower() in READABLE_SUFFIXES:
                return FileRejected(
                    p,
                    "not_a_file",
                    "this is a folder named like a file, not a file",
                    "put the file itself in the month's folder, not a folder",
                )
            continue
        if p.suffix.lower() not in READABLE_SUFFIXES:
            return FileRejected(
                p,
                "unsupported_format",
                f"files of type '{p.suffix.lower() or 'none'}' are not read",
                "send the export as .xlsx, .ods or .csv, and leave no other file in the folder",
            )
        if not _kind_matches(source, p.name):
            names = ", ".join(f"« {k.pattern} »" for k in source.files)
            return FileRejected(
                p,
                "unknown_file_kind",
                f"the file name matches none of the source's kinds of file ({names})",
                "keep the usual file name of the export (it says which programme it lists)",
            )
    return None


def unused_column(place: int, title: str, key: bytes) -> str:
    """A partner column the source does not use, as lineage keeps it: its position and a keyed
    hash of its title — a title can hold a person's name or phone number, so it is never
    stored; the same title in the next delivery gives the same hash, so a change is seen."""
    return f"column {place} #{keyed(key, 'header', normalise_label(title), chars=12)}"


def stage_month(
    landing: Path,
    source: Source,
    month: date,
    key: bytes,
    files: list[Path] | None = None,
    requests: Requests | None = None,
) -> StagedMonth:
    """The source-month's files staged; the rights `requests` in force (from the warehouse) are
    applied to every row: rectified tokens, opposed rows dropped and counted."""
    files = delivered_files(landing, source, month) if files is None else files
    frames: list[pl.DataFrame] = []
    reports: list[FileReport] = []
    for path in files:
        report = FileReport(
            path.relative_to(landing).as_posix(), sha256_of(path), path.stat().st_size
        )
        raw = read_table(path, source)
        report.sheet, report.header_row = raw.sheet, raw.header_row
        report.rows_read, report.rows_ignored = raw.frame.height, raw.rows_ignored
        report.headers = sorted(raw.headers)
        report.titles = raw.headers
        _refuse_month_first_dates(path, raw.frame, raw.headers)
        report.unmapped_headers = [
            unused_column(n, title, key) for n, title in raw.unmapped_headers
        ]
        frames.append(
            raw.frame.with_columns(
                pl.lit(report.sha256).alias("file_sha256"),
                pl.lit(report.file_name).alias("file_name"),
            )
        )
        reports.append(report)
    if not frames:
        return StagedMonth(
            source.id,
            month,
            pl.DataFrame(schema=staged_schema(source)),
            pl.DataFrame(schema=QUARANTINE_SCHEMA),
            reports,
            model_version(source.model),
        )
    # one canonical pass over all the month's files: the per-call cost is paid once
    rows = canonical(pl.concat(frames, how="diagonal_relaxed"), source, month)
    for path, report in zip(files, reports, strict=True):
        _check_period(path, source, rows.filter(pl.col("file_name") == report.file_name), month)
    staged, quarantine, opposed = _split(rows, source, month, key, requests)
    by_file_staged = staged.group_by("file_sha256").len()
    by_file_quarantined = quarantine.group_by("file_sha256").len()
    by_file_opposed = opposed.group_by("file_sha256").len()
    for report in reports:
        report.rows_staged = _count(by_file_staged, report.sha256)
        report.rows_quarantined = _count(by_file_quarantined, report.sha256)
        report.rows_opposed = _count(by_file_opposed, report.sha256)
    return StagedMonth(source.id, month, staged, quarantine, reports, model_version(source.model))


def staged_schema(source: Source) -> dict[str, pl.DataType]:
    """Column -> Polars type of `staging.<source>`, from the source's Pandera model."""
    return {name: col.dtype.type for name, col in source.model.to_schema().columns.items()}


@functools.cache
def model_version(model: type[pa.DataFrameModel]) -> str:
    """A short hash of a Pandera model: its columns' types and constraints, and the code of its
    classes (their custom checks). Recorded with the rows it validated, so that the staging
    checks need not validate them again while the model stays the same."""
    with warnings.catch_warnings():  # custom checks are not serialised: their code is hashed
        warnings.simplefilter("ignore", UserWarning)
        described = model.to_schema().to_json()
    code = "".join(
        inspect.getsource(c)
        for c in model.__mro__
        if isinstance(c, type)
        and issubclass(c, pa.DataFrameModel)
        and c.__module__.startswith("synchro_dagster")
    )
    return hashlib.sha256((described + code).encode()).hexdigest()[:12]


def _count(counts: pl.DataFrame, sha: str) -> int:
    hit = counts.filter(pl.col("file_sha256") == sha)
    return int(hit["len"][0]) if hit.height else 0


def _check_period(path: Path, source: Source, canon: pl.DataFrame, month: date) -> None:
    """A file whose dated rows mostly fall in another month was sent for that other month
    (rows dated after the month count too: March's file sent as February's)."""
    if source.period is None:
        return
    dated = canon.get_column(source.period).drop_nulls()
    if dated.len() < PERIOD_MIN_ROWS:
        return
    inside = ((dated >= month) & (dated <= month_end(month))).mean()
    if inside is not None and inside < 0.5:
        found = dated.dt.strftime("%Y-%m").mode().sort()[0]
        later = found > f"{month:%Y-%m}"
        raise FileRejected(
            path,
            "wrong_month",
            f"the file was delivered for {month:%Y-%m} but its dates are mostly in {found}",
            (f"check the year of the dates; if this is the extract of {found}, " if later else "")
            + f"send the extract of {month:%Y-%m}, or put this file in the {found} folder",
        )


def _refuse_month_first_dates(path: Path, frame: pl.DataFrame, titles: dict[str, str]) -> None:
    """Dates typed month/day/year: the second number goes past 12 and the first (nearly) never.
    Read as day/month they would be quarantined or, worse, staged in the wrong month."""
    for name in DATE_FIELDS:
        if name not in frame.columns:
            continue
        # each distinct date once, counted as many times as rows carry it
        dates = frame.get_column(name).value_counts(name="rows")
        parts = dates.select(
            pl.col(name).str.extract_groups(r"^\s*(\d{1,2})/(\d{1,2})/\d{2,4}\b"), "rows"
        ).unnest(name)
        past_twelve = int(parts.filter(pl.col("2").cast(pl.Int64, strict=False) > 12)["rows"].sum())
        first_past = int(parts.filter(pl.col("1").cast(pl.Int64, strict=False) > 12)["rows"].sum())
        # a few broken dates (31/02) aside, the first number never passes 12
        if past_twelve >= PERIOD_MIN_ROWS and first_past * 10 <= past_twelve:
            raise FileRejected(
                path,
                "month_first_dates",
                f"the dates of this column are month/day/year: on {past_twelve} rows the second "
                "number is over 12, and the first hardly ever is",
                "write the dates day/month/year (dd/mm/yyyy) and send the file again",
                column=titles.get(name, name),
            )


def age_band() -> pl.Expr:
    """Age band at the event, from the birth date (or year), else from the age typed."""
    years = ((pl.col("event_date") - pl.col("birth_date")).dt.total_days() / 365.25).floor()
    return _band(pl.coalesce(years.cast(pl.Int64), pl.col("age"))).alias("age_band")


def _band(age: pl.Expr) -> pl.Expr:
    return (
        pl.when(age < 18)
        .then(pl.lit("0-17"))
        .when(age < 25)
        .then(pl.lit("18-24"))
        .when(age < 35)
        .then(pl.lit("25-34"))
        .when(age < 45)
        .then(pl.lit("35-44"))
        .when(age < 55)
        .then(pl.lit("45-54"))
        .when(age < 65)
        .then(pl.lit("55-64"))
        .when(age.is_not_null())
        .then(pl.lit("65+"))
    )


def _split(
    rows: pl.DataFrame, source: Source, month: date, key: bytes, requests: Requests | None
) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """(staged, quarantined, opposed) rows: tokens are applied the requests' rectifications
    before validation, and an opposed row goes nowhere (only its file is kept, to count it)."""
    tokens = tokenise(rows.with_columns(pl.lit(source.id).alias("source")), key)
    quality = (
        pl.when(pl.col("birth_date").is_not_null() & ~pl.col("birth_year_only"))
        .then(pl.lit("full"))
        .when(pl.col("birth_date").is_not_null())
        .then(pl.lit("year_only"))
        .when(pl.col("age").is_not_null())
        .then(pl.lit("age_only"))
        .otherwise(pl.lit("missing"))
    )
    schema = staged_schema(source)
    columns = list(schema)
    candidates = pl.concat([rows, tokens], how="horizontal").with_columns(
        pl.lit(source.id).alias("source"),
        pl.lit(month).alias("month"),
        quality.alias("birth_date_quality"),
        age_band(),
    )
    candidates, opposed = (requests or Requests.empty()).apply(candidates)
    ok = candidates.filter(pl.col("reasons").list.len() == 0)
    staged = ok.select(columns).cast(schema)
    broken_rules = _rule_failures(staged, source)
    if broken_rules.height:
        flagged = ok.with_row_index("_i").join(broken_rules, on="_i", how="inner")
        candidates = pl.concat(
            [
                candidates.filter(pl.col("reasons").list.len() > 0),
                flagged.drop("_i", "rule_reasons").with_columns(
                    flagged["rule_reasons"].alias("reasons")
                ),
            ],
            how="diagonal_relaxed",
        )
        staged = staged.with_row_index("_i").join(broken_rules, on="_i", how="anti").drop("_i")
    quarantine = (
        candidates.filter(pl.col("reasons").list.len() > 0)
        .select(
            pl.lit(source.id).alias("source"),
            pl.lit(month).alias("month"),
            "file_sha256",
            "file_name",
            "row_number",
            "reasons",
        )
        .cast(QUARANTINE_SCHEMA)
    )
    assert not set(staged.columns) - set(columns) - set(TOKEN_COLUMNS)
    return staged, quarantine, opposed.select("file_sha256")


def _rule_failures(staged: pl.DataFrame, source: Source) -> pl.DataFrame:
    """Rows that break the source's Pandera model: index -> reasons ("rule:<column>:<check>")."""
    try:
        source.model.validate(staged, lazy=True)
    except pa.errors.SchemaErrors as exc:
        cases = exc.failure_cases
        if "index" not in cases.columns or cases["index"].null_count() == cases.height:
            raise  # a whole-table problem (missing column, wrong type) is ours, not the partner's
        return (
            cases.filter(pl.col("index").is_not_null())
            .select(
                pl.col("index").cast(pl.UInt32).alias("_i"),
                pl.concat_str(
                    pl.lit("rule:"),
                    pl.when(pl.col("schema_context") == "Column")
                    .then(pl.col("column"))
                    .otherwise(pl.lit("row")),
                    pl.lit(":"),
                    pl.col("check"),
                ).alias("r"),
            )
            .group_by("_i")
            .agg(pl.col("r").unique().sort().alias("rule_reasons"))
        )
    return pl.DataFrame(schema={"_i": pl.UInt32, "rule_reasons": pl.List(pl.String)})
