"""The declaration language of a partner source, and the canonical record every source maps to.

A source module (one per partner, beside this file) builds a `Source`: which
files it sends, which of its column headers mean which canonical field, how
its codes and labels translate into ours, and the Pandera model its staged
rows must satisfy. The ingestion engine (`synchro_dagster.ingest`) reads
nothing else about a partner. No Dagster here.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from datetime import date

import pandera.polars as pa
import polars as pl

# ----------------------------------------------------------------- canonical codes
SITUATIONS = (
    "RUE",
    "MISE_ABRI",
    "HOTEL",
    "HEB_INSERTION",
    "ASILE",
    "LOG_TEMP",
    "INSTITUTION",
    "SQUAT",
    "TIERS",
    "LOGE",
    "INCONNU",
)
COMPOSITIONS = (
    "homme_seul",
    "femme_seule",
    "couple_sans_enfant",
    "famille_monoparentale",
    "couple_avec_enfants",
    "groupe_adultes",
    "mineur_isole",
)
PERSONNE_SEULE = "personne_seule"  # a partner code that needs the sex to become a composition
ROLES = ("principal", "conjoint", "enfant", "autre")
SEXES = ("M", "F")
NEED_STATUSES = ("open", "recognised", "answered", "closed", "rejected")
PROGRAMMES = (
    "CHU",
    "HOTEL",
    "CHRS",
    "STABILISATION",
    "CADA",
    "HUDA",
    "IML",
    "PENSION_DE_FAMILLE",
    "RESIDENCE_SOCIALE",
    "UN_CHEZ_SOI_DABORD",
)
DESTINATIONS = (
    "housing_social",
    "housing_private",
    "housing_adapted",
    "housing_first",
    "deceased",
    "left_territory",
    *SITUATIONS,
)
AGE_BANDS = ("0-17", "18-24", "25-34", "35-44", "45-54", "55-64", "65+")
BIRTH_DATE_QUALITY = ("full", "year_only", "age_only", "missing")

# canonical input fields a partner column can map to
TEXT_FIELDS = (
    "record_ref",
    "household_ref",
    "last_name",
    "first_name",
    "birth_name",
    "full_name",
    "age",
)
DATE_FIELDS = ("birth_date", "event_date", "need_since", "entry_date", "exit_date")
INT_FIELDS = ("household_size",)
CODED_FIELDS = (
    "sex",
    "role",
    "composition",
    "situation",
    "status",
    "response",
    "programme",
    "destination",
)
FIELDS = TEXT_FIELDS + DATE_FIELDS + INT_FIELDS + CODED_FIELDS

CODE_TARGETS: dict[str, tuple[str, ...]] = {
    "sex": SEXES,
    "role": ROLES,
    "composition": (*COMPOSITIONS, PERSONNE_SEULE),
    "situation": SITUATIONS,
    "status": NEED_STATUSES,
    "response": ("fulfilled", "not_fulfilled"),
    "programme": PROGRAMMES,
    "destination": DESTINATIONS,
}


def normalise_label(text: str) -> str:
    """Case, accents, spacing and punctuation do not matter when matching headers and codes."""
    text = unicodedata.normalize("NFKD", str(text))
    text = "".join(c for c in text if not unicodedata.combining(c)).lower()
    text = text.replace("œ", "oe").replace("æ", "ae")
    return re.sub(r"[^a-z0-9]+", " ", text).strip()


# ----------------------------------------------------------------- declarations
@dataclass(frozen=True)
class FileKind:
    """One kind of file a partner sends (e.g. one provider's list), and what it implies."""

    pattern: str  # glob on the file name, case-insensitive
    constants: dict[str, str] = field(default_factory=dict)  # canonical field -> canonical code


@dataclass(frozen=True)
class Source:
    id: str
    label: str  # its short French name, as published tables and reports show it
    partner: str
    description: str
    owner: str
    files: tuple[FileKind, ...]
    columns: dict[str, tuple[str, ...]]  # canonical field -> header aliases, as partners write them
    required: tuple[str, ...]  # canonical fields that must have a column; "a|b": either one
    values: dict[str, dict[str, str]]  # coded field -> partner code or label -> canonical code
    model: type[pa.DataFrameModel]
    need_type: str | None = None  # the kind of request a row of this source states, if any
    evidence: tuple[str, ...] = ("event_date",)  # date fields dating the row, first present wins;
    # "month_end" stands for "present at the end of the month" (occupancy lists)
    period: str | None = "event_date"  # the date field whose values must fall in the delivered
    # month (None: the source lists old facts, e.g. decisions taken months ago)
    reader: dict[str, str] = field(default_factory=dict)  # hints: delimiter, encoding, sheet
    # when two sources date their evidence the same day, the lower rank decides the household's
    # situation: 1 a provider's occupancy list, 2 a social worker's evaluation, 3 the 115,
    # 4 street outreach, 5 a register (SNE, SYPLO, DALO), 6 a declaration at a day centre
    situation_rank: int = 5
    exit_destination: str | None = None  # what an exit date without a destination means here
    # a household's rows in one month name each of its persons once (an occupancy list, a request
    # group): two rows of one household in one month are two persons, whatever their names say
    lists_person_once: bool = False
    # a situation this source can only state broadly -> the situations it may stand for (SNE's
    # "SH", any shelter): an evidence of one of these earlier in the window says which
    broad_situations: dict[str, tuple[str, ...]] = field(default_factory=dict)
    example_headers: tuple[str, ...] = ()  # documentation: one real header line

    def __post_init__(self) -> None:
        required = [name for alternatives in self.required for name in alternatives.split("|")]
        for name in (*self.columns, *required):
            if name not in FIELDS:
                raise ValueError(f"source {self.id}: unknown canonical field {name!r}")
        for name, mapping in self.values.items():
            allowed = CODE_TARGETS[name]
            bad = sorted({v for v in mapping.values() if v not in allowed})
            if bad:
                raise ValueError(f"source {self.id}: {name} maps to unknown codes {bad}")
        for broad, precise in self.broad_situations.items():
            bad = sorted({broad, *precise} - set(SITUATIONS))
            if bad:
                raise ValueError(f"source {self.id}: broad_situations name unknown codes {bad}")
        if self.exit_destination is not None and self.exit_destination not in DESTINATIONS:
            raise ValueError(f"source {self.id}: exit_destination {self.exit_destination!r}")
        for kind in self.files:
            for name, value in kind.constants.items():
                if value not in CODE_TARGETS.get(name, ()):
                    raise ValueError(f"source {self.id}: constant {name}={value!r} is not a code")

    def header_index(self) -> dict[str, str]:
        """Normalised header text -> canonical field."""
        return {normalise_label(a): name for name, aliases in self.columns.items() for a in aliases}

    def code_index(self, name: str) -> dict[str, str]:
        return {normalise_label(k): v for k, v in self.values.get(name, {}).items()}


# ----------------------------------------------------------------- staged record
class StagedRecord(pa.DataFrameModel):
    """One row of `staging.<source>`: a partner row, pseudonymised and in canonical codes.

    Identity lives only in keyed tokens (`tok_*`, HMAC-SHA256); nothing here can
    be read back into a name, a birth date or a partner record number.
    """

    source: str
    month: date
    file_sha256: str = pa.Field(str_length=64)
    row_number: int = pa.Field(ge=1)
    record_token: str = pa.Field(nullable=True)
    household_token: str = pa.Field(nullable=True)
    tok_last: str = pa.Field(nullable=True)
    tok_last_core: str = pa.Field(nullable=True)
    tok_birth_last: str = pa.Field(nullable=True)
    tok_first: str = pa.Field(nullable=True)
    tok_first_first: str = pa.Field(nullable=True)
    tok_phon_last: str = pa.Field(nullable=True)
    tok_phon_first: str = pa.Field(nullable=True)
    tok_name: str = pa.Field(nullable=True)
    tok_name_sorted: str = pa.Field(nullable=True)
    tok_dob: str = pa.Field(nullable=True)
    tok_dob_swapped: str = pa.Field(nullable=True)
    tok_birth_year: str = pa.Field(nullable=True)
    tok_birth_md: str = pa.Field(nullable=True)
    tok_last_typo: str = pa.Field(nullable=True)  # keyed forms one typo away, space-separated
    tok_first_typo: str = pa.Field(nullable=True)
    tok_last_typo2: str = pa.Field(nullable=True)  # keyed forms two letters short
    tok_first_typo2: str = pa.Field(nullable=True)
    tok_dob_near: str = pa.Field(nullable=True)  # keyed forms, one date field left out each
    birth_date_quality: str = pa.Field(isin=BIRTH_DATE_QUALITY)
    sex: str = pa.Field(isin=SEXES, nullable=True)
    age_band: str = pa.Field(isin=AGE_BANDS, nullable=True)
    role: str = pa.Field(isin=ROLES, nullable=True)
    composition: str = pa.Field(isin=COMPOSITIONS, nullable=True)
    household_size: int = pa.Field(ge=1, le=30, nullable=True)
    situation: str = pa.Field(isin=SITUATIONS, nullable=True)
    event_date: date
    need_type: str = pa.Field(nullable=True)
    need_status: str = pa.Field(isin=NEED_STATUSES, nullable=True)
    need_since: date = pa.Field(nullable=True)
    request_fulfilled: bool = pa.Field(nullable=True)
    programme: str = pa.Field(isin=PROGRAMMES, nullable=True)
    entry_date: date = pa.Field(nullable=True)
    exit_date: date = pa.Field(nullable=True)
    exit_destination: str = pa.Field(isin=DESTINATIONS, nullable=True)

    class Config:
        strict = True
        coerce = False

    @pa.dataframe_check
    def identity_present(cls, data: pa.PolarsData) -> pl.LazyFrame:
        """A staged row names someone: a last name or a first name token."""
        return data.lazyframe.select(
            pl.col("tok_last").is_not_null() | pl.col("tok_first").is_not_null()
        )

    @pa.dataframe_check
    def exit_after_entry(cls, data: pa.PolarsData) -> pl.LazyFrame:
        """Nobody leaves a place before entering it."""
        return data.lazyframe.select(
            pl.col("exit_date").is_null()
            | pl.col("entry_date").is_null()
            | (pl.col("exit_date") >= pl.col("entry_date"))
        )
