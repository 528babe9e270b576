"""The data subjects' rights (GDPR art. 15, 16, 18, 21), one command each: access, rectify,
oppose, limit and lift.

The identity the DPO types is normalised and tokenised with the key exactly as ingestion does
(`tokens.tokenise`), and lives only in memory: it finds the staged records carrying it, the
persons the linkage joined them to, then every record of those persons. Several persons
matching (namesakes) is never guessed: the command lists them, with what tells them apart, and
asks for the birth date or `--person N`. A request that changes data is stored as tokens
(`privacy.rules`), applied to the staged records at once, and the affected months are run
again through the monthly job (`cli.run_months`), which also refreshes every publication.
Each command prints what it did in numbers, does nothing the second time, and records an
audit event (counts and the request reference only).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import date
from pathlib import Path

import duckdb
import polars as pl

from synchro_dagster import warehouse
from synchro_dagster.identity.aliases import AliasResolver
from synchro_dagster.identity.persons import RECORD_KEY
from synchro_dagster.identity.tokens import identity_inputs, tokenise
from synchro_dagster.ingest.stage import delivered_files, sha256_of, stage_month
from synchro_dagster.ingest.store import check_key
from synchro_dagster.privacy import audit
from synchro_dagster.privacy.rules import (
    FIELD_COLUMNS,
    Requests,
    add_request,
    drop_request,
    replaced,
)
from synchro_dagster.publish.xlsx import workbook
from synchro_dagster.settings import Settings, pseudonymisation_key
from synchro_dagster.sources import all_sources

NAMESAKES = 3  # exit code: several persons match, the DPO must choose
NOT_FOUND = 1


class RightsError(RuntimeError):
    """A request that cannot be served as typed; the message says why and what to do."""

    def __init__(self, message: str, code: int = NOT_FOUND):
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class Identity:
    """The identity typed by the DPO: in memory only, never stored, printed or logged."""

    last_name: str
    first_name: str
    birth_date: date | None = None

    def tokens(self, key: bytes) -> dict[str, str | None]:
        row = {
            "last_name": self.last_name,
            "first_name": self.first_name,
            "birth_date": self.birth_date,
            "birth_year_only": False,  # a date typed by the DPO is a full date
            "source": "rights",
        }
        return tokenise(identity_inputs([row]), key).row(0, named=True)


@dataclass(frozen=True)
class Person:
    """One candidate: a person id of the linkage, a limited person (their request), or a
    record not linked yet; with every staged record of theirs."""

    kind: str  # person | limited | record
    ref: int | str
    records: pl.DataFrame  # staged rows (every staging column) + record_key

    @property
    def first_month(self) -> date:
        return self.records["month"].min()

    def description(self) -> str:
        """What tells namesakes apart, without any partner identifier."""
        r = self.records
        partners = ", ".join(sorted(r["source"].unique().to_list()))
        months = sorted({m.strftime("%Y-%m") for m in r["month"]})
        span = months[0] if len(months) == 1 else f"{months[0]} à {months[-1]}"
        ages = ", ".join(sorted(r["age_band"].drop_nulls().unique().to_list())) or "inconnue"
        households = sorted(
            {
                f"{c or 'composition inconnue'}" + (f" ({n} pers.)" if n is not None else "")
                for c, n in r.select("composition", "household_size").iter_rows()
            }
        )
        frozen = " ; traitement limité" if self.kind == "limited" else ""
        return (
            f"{r.height} enregistrement(s) ; sources : {partners} ; mois : {span} ; "
            f"tranche d'âge : {ages} ; ménage : {', '.join(households)}{frozen}"
        )


# --- finding the person -------------------------------------------------------------------


def _staged(conn: duckdb.DuckDBPyConnection, where: str, params: list) -> pl.DataFrame:
    """Staged rows of every source (limited ones included) satisfying `where`."""
    frames = [
        conn.sql(f"SELECT {RECORD_KEY} AS record_key, * FROM {t} WHERE {where}", params=params).pl()
        for t in warehouse.existing_tables(conn, "staging")
    ]
    frames = [f for f in frames if f.height]
    return pl.concat(frames, how="diagonal_relaxed") if frames else pl.DataFrame()


def _name_matches(conn: duckdb.DuckDBPyConnection, typed: dict) -> pl.DataFrame:
    """Records carrying the typed name: as typed, first and last swapped, or under the birth
    name (a usage name typed as the last name, or the other way round)."""
    return _staged(
        conn,
        "tok_name = ? OR tok_name_sorted = ? OR (tok_first = ? AND tok_birth_last = ?)",
        [typed["tok_name"], typed["tok_name_sorted"], typed["tok_first"], typed["tok_last"]],
    )


def _dob_agrees(frame: pl.DataFrame, typed: dict) -> pl.Series:
    """The record carries the typed birth date (the year, when it gives only a year)."""
    return frame.select(
        (
            (pl.col("tok_dob") == typed["tok_dob"])
            | (pl.col("tok_dob").is_null() & (pl.col("tok_birth_year") == typed["tok_birth_year"]))
        ).fill_null(False)
    ).to_series()


def _current_persons(conn: duckdb.DuckDBPyConnection, keys: pl.Series) -> pl.DataFrame:
    """record_key -> today's person id (merges followed), for the records linked."""
    if "identity.person_links" not in warehouse.existing_tables(conn, "identity"):
        return pl.DataFrame(schema={"record_key": pl.String, "person_id": pl.Int64})
    conn.register("_keys", keys.to_frame("record_key"))
    try:
        links = conn.sql(
            "SELECT record_key, arg_max(person_id, month) AS person_id, max(month) AS seen "
            "FROM identity.person_links WHERE record_key IN (SELECT record_key FROM _keys) "
            "GROUP BY record_key"
        ).pl()
    finally:
        conn.unregister("_keys")
    aliases = AliasResolver(
        conn.execute("SELECT month, alias_id, person_id FROM identity.person_aliases").fetchall()
    )
    return links.with_columns(aliases.resolved(links, "person_id", "seen")).drop("seen")


def _records_of_persons(conn: duckdb.DuckDBPyConnection, person_ids: list[int]) -> pl.DataFrame:
    """Every staged record linked (today) to one of `person_ids`."""
    links = conn.sql(
        "SELECT record_key, arg_max(person_id, month) AS person_id, max(month) AS seen "
        "FROM identity.person_links GROUP BY record_key"
    ).pl()
    aliases = AliasResolver(
        conn.execute("SELECT month, alias_id, person_id FROM identity.person_aliases").fetchall()
    )
    links = links.with_columns(aliases.resolved(links, "person_id", "seen")).filter(
        pl.col("person_id").is_in(pl.Series(person_ids, dtype=pl.Int64).implode())
    )
    conn.register("_keys", links.select("record_key"))
    try:
        rows = _staged(conn, f"{RECORD_KEY} IN (SELECT record_key FROM _keys)", [])
    finally:
        conn.unregister("_keys")
    return rows.join(links.select("record_key", "person_id"), on="record_key")


def candidates(
    conn: duckdb.DuckDBPyConnection, typed: dict, requests: Requests, limited_only: bool = False
) -> list[Person]:
    """The persons the typed identity may designate, each with all their records, in a stable
    order (first month seen, then id)."""
    matches = _name_matches(conn, typed)
    if matches.height == 0:
        return []
    if typed["tok_birth_year"] is not None:
        matches = matches.filter(_dob_agrees(matches, typed))
    limit_of = _limit_requests(matches, requests)
    linked = _current_persons(conn, matches["record_key"])
    matches = matches.join(linked, on="record_key", how="left").with_columns(limit_of)
    people: list[Person] = []
    for request_id in matches["limit_request"].drop_nulls().unique().sort().to_list():
        people.append(Person("limited", request_id, _covered(conn, requests, request_id)))
    if not limited_only:
        free = matches.filter(pl.col("limit_request").is_null())
        person_ids = free["person_id"].drop_nulls().unique().sort().to_list()
        if person_ids:
            rows = _records_of_persons(conn, person_ids)
            for pid in person_ids:
                people.append(
                    Person("person", pid, rows.filter(pl.col("person_id") == pid).drop("person_id"))
                )
        for row in free.filter(pl.col("person_id").is_null()).iter_rows(named=True):
            one = free.filter(pl.col("record_key") == row["record_key"])
            people.append(
                Person("record", row["record_key"], one.drop("person_id", "limit_request"))
            )
    return sorted(people, key=lambda p: (p.first_month, p.kind, str(p.ref)))


def _covered(conn: duckdb.DuckDBPyConnection, requests: Requests, request_id: int) -> pl.DataFrame:
    """The staged rows a request covers (read by token, then matched by the request's rule)."""
    own = requests.subjects.filter(pl.col("request_id") == request_id)
    conn.register("_own", own)
    try:
        rows = _staged(
            conn,
            "record_token IN (SELECT record_token FROM _own) "
            "OR tok_name IN (SELECT tok_name FROM _own)",
            [],
        )
    finally:
        conn.unregister("_own")
    return rows.filter(requests.covers(rows, request_id)) if rows.height else rows


def _limit_requests(frame: pl.DataFrame, requests: Requests) -> pl.Series:
    """The limitation covering each row, if any."""
    out = pl.Series("limit_request", [None] * frame.height, dtype=pl.Int64)
    for request_id in requests.of("limit"):
        out = out.scatter(requests.covers(frame, request_id).arg_true(), request_id)
    return out


def choose(people: list[Person], choice: int | None) -> Person:
    """The one person the request is about; several without a choice is an error that lists
    them."""
    if choice is not None:
        if not 1 <= choice <= len(people):
            raise RightsError(
                f"--person {choice}: there are {len(people)} matching person(s); give a number "
                f"from 1 to {len(people)} as listed without --person."
            )
        return people[choice - 1]
    if len(people) == 1:
        return people[0]
    listing = "\n".join(f"  {i}. {p.description()}" for i, p in enumerate(people, 1))
    raise RightsError(
        f"Plusieurs personnes portent ce nom ({len(people)}) : rien n'a été fait.\n{listing}\n"
        "Précisez la date de naissance (--birth-date AAAA-MM-JJ) ou choisissez une personne "
        "de la liste (--person N).\n"
        f"Several persons carry this name ({len(people)}): nothing was done. Give the birth "
        "date (--birth-date YYYY-MM-DD) or choose one from the list above (--person N).",
        NAMESAKES,
    )


# --- the commands ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Request:
    """One command as typed: where, who (in memory only), which request of the register."""

    settings: Settings
    identity: Identity
    request_ref: str | None = None
    choice: int | None = None  # --person N


def _tokens(request: Request) -> dict:
    """The typed identity's tokens, under the warehouse's own key (refused otherwise)."""
    try:
        audit.checked_ref(request.request_ref)  # refused before anything is done
    except ValueError as wrong:
        raise RightsError(str(wrong)) from None
    path = request.settings.warehouse_path
    if not path.exists():
        raise RightsError(f"No warehouse at {path}: nothing is held, nothing to do.")
    key = pseudonymisation_key(request.settings)
    with warehouse.read_only(path) as conn:
        check_key(conn, key, record=False)
    return request.identity.tokens(key)


def _find(request: Request, limited_only: bool = False) -> tuple[Person | None, Requests]:
    typed = _tokens(request)
    with warehouse.read_only(request.settings.warehouse_path) as conn:
        requests = Requests.load(conn)
        people = candidates(conn, typed, requests, limited_only)
    return (choose(people, request.choice) if people else None), requests


def _record(request: Request, kind: str, counts: dict) -> None:
    with warehouse.connect(request.settings.warehouse_path) as conn:
        audit.record(conn, request.settings, f"rights.{kind}", counts, request.request_ref)


@contextmanager
def _transaction(settings: Settings) -> Iterator[duckdb.DuckDBPyConnection]:
    """The request stored and applied to the staged records together, or not at all."""
    with warehouse.connect(settings.warehouse_path) as conn:
        conn.execute("BEGIN TRANSACTION")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")


def _months_from(settings: Settings, first: date) -> list[date]:
    """The months already run from `first` on: those a change in `first` can move."""
    with warehouse.read_only(settings.warehouse_path) as conn:
        rows = conn.execute(
            "SELECT DISTINCT month FROM lineage.files WHERE month >= ? ORDER BY month", [first]
        ).fetchall()
    return [m for (m,) in rows]


def _recompute(settings: Settings, first: date) -> list[date]:
    """Runs the affected months again through the monthly job, then the publications."""
    from synchro_dagster.cli import run_months  # the one way months are run

    months = _months_from(settings, first)
    if run_months(settings.data_dir, months) != 0:
        raise RightsError(
            "The request is stored but the months could not be recomputed: fix the failure "
            f"above, then run `synchro run --data-dir {settings.data_dir} --months "
            f"{first:%Y-%m}:`; the request is applied by every run."
        )
    return months


def _not_found(request: Request) -> RightsError:
    given = " et cette date de naissance" if request.identity.birth_date else ""
    return RightsError(
        f"Aucun enregistrement ne porte ce nom{given} : rien n'a été fait. Vérifiez "
        "l'orthographe (nom d'usage ou de naissance) ou essayez sans date de naissance.\n"
        "No record carries this identity: nothing was done."
    )


def _headline(settings: Settings, months: list[date]) -> dict[str, float]:
    with warehouse.read_only(settings.warehouse_path) as conn:
        rows = conn.execute(
            "SELECT indicator, sum(value) FROM marts.indicators WHERE month = ? AND dimension "
            "IS NULL AND indicator IN ('stock_households', 'stock_persons', "
            "'inflow_households', 'outflow_households') GROUP BY indicator",
            [max(months)],
        ).fetchall()
    return dict(rows)


def _figures_line(before: dict[str, float], after: dict[str, float], month: date) -> str:
    return f"Chiffres de {month:%Y-%m} : " + ", ".join(
        f"{name} {before.get(name, 0):,.0f} -> {after.get(name, 0):,.0f}" for name in sorted(after)
    )


def access(request: Request, out: Path) -> int:
    """Art. 15: a French export (xlsx and JSON) of everything held on the person."""
    person, _ = _find(request)
    if person is None:
        raise _not_found(request)
    with warehouse.read_only(request.settings.warehouse_path) as conn:
        sheets = export_sheets(conn, person)
    xlsx, js = out.with_suffix(".xlsx"), out.with_suffix(".json")
    write_export(sheets, xlsx, js)
    counts = {
        "records": person.records.height,
        "household_months": sheets["Ménage par mois"].height,
        "flows": sheets["Entrées et sorties"].height,
        "sources": person.records["source"].n_unique(),
    }
    _record(request, "access", counts)
    print(
        f"Export écrit : {xlsx} et {js} (lisibles par vous seul) : {counts['records']} "
        f"enregistrement(s) de {counts['sources']} source(s), {counts['household_months']} "
        f"mois-ménage, {counts['flows']} entrée(s)/sortie(s)."
    )
    return 0


RECORD_LABELS = {  # staged column -> the export's French heading
    "month": "Mois de la livraison",
    "file_name": "Fichier",
    "row_number": "Ligne du fichier",
    "role": "Rôle dans le ménage",
    "sex": "Sexe",
    "age_band": "Tranche d'âge",
    "birth_date_quality": "Date de naissance reçue",
    "composition": "Composition du ménage déclarée",
    "household_size": "Taille du ménage déclarée",
    "situation": "Situation",
    "event_date": "Date de l'événement",
    "need_type": "Demande",
    "need_status": "Statut de la demande",
    "need_since": "Demande depuis",
    "request_fulfilled": "Demande satisfaite",
    "programme": "Dispositif",
    "entry_date": "Date d'entrée",
    "exit_date": "Date de sortie",
    "exit_destination": "Destination à la sortie",
}
BIRTH_DATE_RECEIVED = {  # only the quality: the date itself is held as tokens
    "full": "complète",
    "year_only": "année seule",
    "age_only": "âge seul",
    "missing": "absente",
}
HOUSEHOLD_LABELS = {  # core.household_months column -> heading (no other member's detail)
    "month": "Mois",
    "status": "Statut",
    "situation": "Situation",
    "ethos": "Catégorie ETHOS",
    "composition": "Composition du ménage",
    "persons": "Nombre de personnes du ménage",
    "first_month_seen": "Premier mois connu",
    "sources": "Sources du mois",
    "open_needs": "Demandes ouvertes",
    "needs_answered": "Demandes satisfaites",
    "answers": "Réponses",
    "urgence_requests": "Appels au 115",
    "urgence_not_fulfilled": "dont non satisfaits",
    "priority_since": "Prioritaire depuis",
    "exit_date": "Date de sortie",
    "housing_kind": "Type de logement",
}


def export_sheets(conn: duckdb.DuckDBPyConnection, person: Person) -> dict[str, pl.DataFrame]:
    """The export's sheets. The person's own records in full; of their household, only what
    describes the household as a whole (status, composition, size, flows): the other members'
    records, ages or identities are theirs, not the requester's (art. 15 §4)."""
    records = person.records
    sources = all_sources()
    conn.register("_mine", records.select("record_key", "source", "file_sha256", "row_number"))
    try:
        files = conn.sql(
            "SELECT DISTINCT m.record_key, f.file_name FROM _mine m JOIN lineage.files f "
            "ON f.source = m.source AND f.sha256 = m.file_sha256"
        ).pl()
        counted = conn.sql(
            "SELECT DISTINCT p.month, p.household_id FROM core.provenance p JOIN _mine m "
            "ON p.source = m.source AND p.file_sha256 = m.file_sha256 "
            "AND p.row_number = m.row_number"
        ).pl()
    finally:
        conn.unregister("_mine")
    conn.register("_counted", counted)
    try:
        months = conn.sql(
            f"SELECT {', '.join(HOUSEHOLD_LABELS)} FROM core.household_months "
            "JOIN _counted USING (month, household_id) ORDER BY month"
        ).pl()
        flows = conn.sql(
            "SELECT month, flow, type FROM core.household_events "
            "JOIN _counted USING (month, household_id) ORDER BY month, flow"
        ).pl()
    finally:
        conn.unregister("_counted")
    partner = pl.col("source").replace_strict(
        {k: s.partner for k, s in sources.items()}, default=None
    )
    rows = (
        records.join(files, on="record_key", how="left")
        .with_columns(pl.col("birth_date_quality").replace(BIRTH_DATE_RECEIVED))
        .sort("month", "source", "row_number")
        .select(
            partner.alias("Partenaire"),
            pl.col("source").alias("Source"),
            *(pl.col(c).alias(label) for c, label in RECORD_LABELS.items()),
        )
    )
    partners = (
        records.group_by("source")
        .agg(
            pl.len().alias("Enregistrements"),
            pl.col("month").min().alias("Premier mois"),
            pl.col("month").max().alias("Dernier mois"),
        )
        .sort("source")
        .select(partner.alias("Partenaire"), pl.col("source").alias("Source"), pl.exclude("source"))
    )
    summary = pl.DataFrame(
        {
            "Rubrique": [
                "Date de l'export",
                "Enregistrements détenus",
                "Sources (partenaires)",
                "Mois où le ménage est compté",
                "Entrées et sorties du ménage",
                "Identité",
                "Autres membres du ménage",
            ],
            "Valeur": [
                date.today().isoformat(),
                str(records.height),
                str(records["source"].n_unique()),
                str(months.height),
                str(flows.height),
                "Nom, prénom et date de naissance ne sont pas conservés en clair : seulement des "
                "jetons chiffrés (HMAC) qui ne se lisent pas sans la clé du SIAO.",
                "Seuls la composition et la taille du ménage sont indiquées ; les données des "
                "autres membres leur appartiennent (RGPD art. 15 §4).",
            ],
        }
    )
    return {
        "Synthèse": summary,
        "Enregistrements": rows,
        "Partenaires": partners,
        "Ménage par mois": months.rename(HOUSEHOLD_LABELS),
        "Entrées et sorties": flows.with_columns(
            pl.col("flow").replace({"inflow": "entrée", "outflow": "sortie"})
        ).rename({"month": "Mois", "flow": "Flux", "type": "Type"}),
    }


def write_export(sheets: dict[str, pl.DataFrame], xlsx: Path, js: Path) -> None:
    """The workbook and its JSON twin, readable by their owner only (personal data)."""

    xlsx.parent.mkdir(parents=True, exist_ok=True)
    for path in (xlsx, js):
        path.unlink(missing_ok=True)
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    with workbook(xlsx) as book:
        for name, frame in sheets.items():
            frame.write_excel(workbook=book, worksheet=name, autofit=True)
    content = {name: frame.to_dicts() for name, frame in sheets.items()}
    js.write_text(json.dumps(content, ensure_ascii=False, indent=1, default=str), "utf-8")
    for path in (xlsx, js):
        path.chmod(0o600)


SETTABLE = {"birth_date", "last_name", "first_name"}
DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def parse_setting(text: str) -> tuple[str, str | date]:
    """ "birth_date=1985-03-02" -> ("birth_date", date(1985, 3, 2))."""
    field, _, value = text.partition("=")
    if field not in SETTABLE or not value.strip():
        raise RightsError(
            f"--set {field}=…: write birth_date=YYYY-MM-DD, last_name=NOM or first_name=Prénom."
        )
    if field != "birth_date":
        return field, value.strip()
    try:
        if not DATE.match(value):
            raise ValueError
        return field, date.fromisoformat(value)
    except ValueError:
        raise RightsError(
            "--set birth_date=…: write the date YYYY-MM-DD, e.g. 1985-03-02"
        ) from None


def rectify(request: Request, setting: str) -> int:
    """Art. 16: the person's records carry the corrected value from now on, at every run."""
    field, value = parse_setting(setting)
    _tokens(request)  # a wrong reference, key or path is refused before the warehouse changes
    with warehouse.connect(request.settings.warehouse_path) as conn:
        warehouse.ensure_staging(conn)  # a token column declared since: the rectification sets it
    person, requests = _find(request)
    if person is None:
        if _already(requests, _tokens(request), "rectify"):
            print(
                "Déjà rectifié : plus aucun enregistrement ne porte cette identité ; rien n'a "
                "été fait (0 enregistrement)."
            )
            _record(request, "rectify", {"records": 0, "already": 1})
            return 0
        raise _not_found(request)
    key = pseudonymisation_key(request.settings)
    corrected = replace(request.identity, **{field: value}).tokens(key)
    replacement = {c: corrected[c] for c in FIELD_COLUMNS[field]}
    if field == "birth_date":
        replacement["birth_date_quality"] = "full"
    carried = person.records.select(
        pl.all_horizontal(pl.col(c).eq_missing(v) for c, v in replacement.items())
    ).to_series()
    if carried.all():
        print(
            f"Déjà rectifié : les {person.records.height} enregistrement(s) portent déjà cette "
            "valeur ; rien n'a été fait."
        )
        _record(request, "rectify", {"records": 0, "already": 1})
        return 0
    size_before = _person_size(request.settings, person.records)
    before = _headline(request.settings, _months_from(request.settings, person.first_month))
    with _transaction(request.settings) as conn:
        request_id = add_request(conn, "rectify", person.records, replacement)
        changed = _rewrite_staging(conn, person.records, replacement)
    months = _recompute(request.settings, person.first_month)
    size_after = _person_size(request.settings, person.records)
    after = _headline(request.settings, months)
    counts = {
        "records": changed,
        "months": [f"{m:%Y-%m}" for m in months],
        "person_records_before": size_before,
        "person_records_after": size_after,
        "request": request_id,
    }
    _record(request, "rectify", counts)
    print(
        f"Rectification ({field}) enregistrée et appliquée à {changed} enregistrement(s) ; "
        f"elle s'appliquera à chaque livraison suivante. Mois recalculés : "
        f"{', '.join(counts['months'])}. La personne qu'ils désignent compte {size_after} "
        f"enregistrement(s) (avant : {size_before}).\n{_figures_line(before, after, max(months))}"
    )
    return 0


def _person_size(settings: Settings, records: pl.DataFrame) -> int:
    """Records of the person (or persons) these records are linked to today."""
    with warehouse.read_only(settings.warehouse_path) as conn:
        ids = _current_persons(conn, records["record_key"])["person_id"].unique().to_list()
        return _records_of_persons(conn, ids).height if ids else 0


def _rewrite_staging(
    conn: duckdb.DuckDBPyConnection, records: pl.DataFrame, replacement: dict[str, str] | None
) -> int:
    """The person's staged records rectified (`replacement`) or, without one, deleted and
    counted `rows_opposed` in lineage.files. All their records, whatever tokens they carry:
    the requests stored act on later deliveries. Returns the rows changed."""
    warehouse.ensure(conn, "lineage.files")  # rows_opposed, in a warehouse older than it
    changed = 0
    for source in records["source"].unique().sort().to_list():
        name = f"staging.{source}"
        columns = [row[0] for row in conn.execute(f"DESCRIBE {name}").fetchall()]
        old = records.filter(pl.col("source") == source).select(columns)
        conn.register("_old", old.select("source", "file_sha256", "row_number"))
        try:
            conn.execute(
                f"DELETE FROM {name} WHERE {RECORD_KEY} IN (SELECT {RECORD_KEY} FROM _old)"
            )
        finally:
            conn.unregister("_old")
        if replacement is not None:
            new = replaced(old, pl.Series([True] * old.height), replacement)
            changed += new.join(old, on=columns, how="anti", nulls_equal=True).height
            conn.register("_new", new)
            try:
                conn.execute(f"INSERT INTO {name} BY NAME SELECT * FROM _new")
            finally:
                conn.unregister("_new")
            continue
        changed += old.height
        for month, sha, n in old.group_by("month", "file_sha256").len().iter_rows():
            conn.execute(
                "UPDATE lineage.files SET rows_staged = rows_staged - ?, "
                "rows_opposed = coalesce(rows_opposed, 0) + ? "
                "WHERE source = ? AND month = ? AND sha256 = ?",
                [n, n, source, month, sha],
            )
    return changed


def oppose(request: Request) -> int:
    """Art. 21: the person leaves every table, the snapshot and the publications, and their
    future records are dropped at ingestion."""
    person, requests = _find(request)
    if person is None:
        typed = _tokens(request)
        if _already(requests, typed, "oppose"):
            print(
                "Opposition déjà appliquée : aucun enregistrement de cette personne n'est "
                "détenu ; rien n'a été fait (0 enregistrement)."
            )
            _record(request, "oppose", {"records": 0, "already": 1})
            return 0
        raise _not_found(request)
    settings = request.settings
    months = _months_from(settings, person.first_month)
    before = _headline(settings, months)
    key = pseudonymisation_key(settings)
    with warehouse.read_only(settings.warehouse_path) as conn:
        households = _households_of(conn, person.records)
        quarantined, unchecked = quarantined_rows(
            conn, settings, key, requests.adding("oppose", person.records), person.records
        )
    with _transaction(settings) as conn:
        request_id = add_request(conn, "oppose", person.records)
        removed = _rewrite_staging(conn, person.records, None)
        _drop_quarantined(conn, quarantined)
    _recompute(settings, person.first_month)
    rows = person.records.select("source", "file_sha256", "row_number")
    left = remaining(settings, pl.concat([rows, quarantined.select(rows.columns)]))
    after = _headline(settings, months)
    counts = {
        "records": removed,
        "quarantined_rows": quarantined.height,
        "source_months_unchecked": unchecked,
        "households": households["households"],
        "households_removed": households["alone"],
        "household_months": households["household_months"],
        "rows_left": sum(left.values()),
        "months": [f"{m:%Y-%m}" for m in months],
        "request": request_id,
    }
    _record(request, "oppose", counts)
    by_source = ", ".join(
        f"{s} {n}" for s, n in person.records.group_by("source").len().sort("source").iter_rows()
    )
    print(
        f"Opposition appliquée : {removed} enregistrement(s) supprimé(s) ({by_source}) et "
        f"{quarantined.height} ligne(s) écartée(s) (quarantaine) de leurs livraisons"
        + (
            f" ({unchecked} source-mois non relus : fichiers d'origine absents ou changés)"
            if unchecked
            else ""
        )
        + " ; "
        f"{households['household_months']} mois-ménage de {households['households']} ménage(s) "
        f"recalculés, dont {households['alone']} ménage(s) qui n'existai(en)t que par ces "
        f"enregistrements. Mois recalculés et publications régénérées : "
        f"{', '.join(counts['months'])}. Lignes restantes issues de ces enregistrements : "
        f"{counts['rows_left']}. Leurs prochaines livraisons seront écartées à l'ingestion "
        f"(comptées `rows_opposed` dans lineage.files).\n"
        f"{_figures_line(before, after, max(months))}"
    )
    return 0


def limit(request: Request) -> int:
    """Art. 18: the person's records are kept but left out of every computation until lifted."""
    person, _ = _find(request)
    if person is None:
        raise _not_found(request)
    if person.kind == "limited":
        print(
            f"Traitement déjà limité ({person.records.height} enregistrement(s) gelés) : rien "
            "n'a été fait."
        )
        _record(request, "limit", {"records": 0, "already": 1})
        return 0
    before = _headline(request.settings, _months_from(request.settings, person.first_month))
    with warehouse.connect(request.settings.warehouse_path) as conn:
        request_id = add_request(conn, "limit", person.records)
    months = _recompute(request.settings, person.first_month)
    after = _headline(request.settings, months)
    _record(
        request,
        "limit",
        {
            "records": person.records.height,
            "months": [f"{m:%Y-%m}" for m in months],
            "request": request_id,
        },
    )
    print(
        f"Traitement limité : {person.records.height} enregistrement(s) conservés mais écartés "
        f"de tout calcul et de toute publication jusqu'à `synchro rights lift`. Mois "
        f"recalculés : {', '.join(f'{m:%Y-%m}' for m in months)}.\n"
        f"{_figures_line(before, after, max(months))}"
    )
    return 0


def lift(request: Request) -> int:
    """Ends a limitation: the records count again from their months on."""
    person, _ = _find(request, limited_only=True)
    if person is None:
        print("Aucune limitation en cours pour cette personne : rien n'a été fait.")
        _record(request, "lift", {"records": 0, "already": 1})
        return 0
    before = _headline(request.settings, _months_from(request.settings, person.first_month))
    with warehouse.connect(request.settings.warehouse_path) as conn:
        drop_request(conn, int(person.ref))
    months = _recompute(request.settings, person.first_month)
    after = _headline(request.settings, months)
    _record(
        request,
        "lift",
        {"records": person.records.height, "months": [f"{m:%Y-%m}" for m in months]},
    )
    print(
        f"Limitation levée : {person.records.height} enregistrement(s) comptent de nouveau. "
        f"Mois recalculés : {', '.join(f'{m:%Y-%m}' for m in months)}.\n"
        f"{_figures_line(before, after, max(months))}"
    )
    return 0


def _already(requests: Requests, typed: dict, action: str) -> bool:
    """A request of `action` holds the typed name (and birth date, if typed)."""
    own = requests.subjects.filter(
        (pl.col("action") == action) & (pl.col("tok_name") == typed["tok_name"])
    )
    if typed["tok_dob"] is not None:
        own = own.filter(pl.col("tok_dob").is_null() | (pl.col("tok_dob") == typed["tok_dob"]))
    return own.height > 0


def quarantined_rows(
    conn: duckdb.DuckDBPyConnection,
    settings: Settings,
    key: bytes,
    requests: Requests,
    records: pl.DataFrame,
) -> tuple[pl.DataFrame, int]:
    """The person's rows set aside in quarantine (which keeps no token, only the row's place):
    the delivered files of the months of their records are read again as ingestion reads
    them, with the opposition in force; the rows it drops from quarantine are theirs. A
    source-month whose registered files are no longer in landing as they were is not read
    (counted). Returns (source, month, file_sha256, row_number) and that count."""
    present = set(warehouse.existing_tables(conn, "quarantine"))
    found, unchecked = [], 0
    for month in sorted(records["month"].unique().to_list()):
        for source in all_sources().values():
            name = f"quarantine.{source.id}"
            if name not in present:
                continue
            held = conn.sql(
                f"SELECT file_sha256, row_number FROM {name} WHERE month = ?", params=[month]
            ).pl()
            if held.height == 0:
                continue
            files = delivered_files(settings.landing_dir, source, month)
            delivered = {
                (p.relative_to(settings.landing_dir).as_posix(), sha256_of(p)) for p in files
            }
            registered = set(
                conn.execute(
                    "SELECT file_name, sha256 FROM lineage.files WHERE source = ? AND month = ?",
                    [source.id, month],
                ).fetchall()
            )
            if not files or delivered != registered:
                unchecked += 1
                continue
            again = stage_month(settings.landing_dir, source, month, key, files, requests)
            theirs = held.join(
                again.quarantine.select("file_sha256", "row_number"),
                on=["file_sha256", "row_number"],
                how="anti",
            )
            found.append(
                theirs.with_columns(pl.lit(source.id).alias("source"), pl.lit(month).alias("month"))
            )
    schema = {
        "file_sha256": pl.String,
        "row_number": pl.Int64,
        "source": pl.String,
        "month": pl.Date,
    }
    return (pl.concat(found) if found else pl.DataFrame(schema=schema)), unchecked


def _drop_quarantined(conn: duckdb.DuckDBPyConnection, rows: pl.DataFrame) -> None:
    """Deletes these quarantined rows, counted `rows_opposed` in their file's lineage."""
    for (source, month, sha), group in rows.group_by("source", "month", "file_sha256"):
        numbers = group["row_number"].to_list()
        conn.execute(
            f"DELETE FROM quarantine.{source} WHERE month = ? AND file_sha256 = ? "
            "AND list_contains(?, row_number)",
            [month, sha, numbers],
        )
        conn.execute(
            "UPDATE lineage.files SET rows_quarantined = rows_quarantined - ?, "
            "rows_opposed = coalesce(rows_opposed, 0) + ? "
            "WHERE source = ? AND month = ? AND sha256 = ?",
            [len(numbers), len(numbers), source, month, sha],
        )


def _households_of(conn: duckdb.DuckDBPyConnection, records: pl.DataFrame) -> dict[str, int]:
    """The household-months the records are counted in, their households, and how many of
    those households rest on these records alone."""
    conn.register("_mine", records.select("source", "file_sha256", "row_number"))
    try:
        (household_months, households, alone) = conn.execute(
            "WITH mine AS (SELECT p.month, p.household_id FROM core.provenance p JOIN _mine m "
            "USING (source, file_sha256, row_number)), "
            "theirs AS (SELECT DISTINCT household_id FROM mine), "
            "others AS (SELECT DISTINCT p.household_id FROM core.provenance p "
            "JOIN theirs USING (household_id) ANTI JOIN _mine m "
            "USING (source, file_sha256, row_number)) "
            "SELECT (SELECT count(DISTINCT (month, household_id)) FROM mine), "
            "(SELECT count(*) FROM theirs), "
            "(SELECT count(*) FROM theirs ANTI JOIN others USING (household_id))"
        ).fetchall()[0]
    finally:
        conn.unregister("_mine")
    return {"household_months": household_months, "households": households, "alone": alone}


def remaining(settings: Settings, records: pl.DataFrame) -> dict[str, int]:
    """Rows still derived from these records, per table: every personal table of the
    warehouse (`warehouse.personal_tables()`) and of the analysts' snapshot holding record
    references. `privacy.subjects` is left aside: it is the opposition itself (tokens only);
    tables of ids only (identity, core) are recomputed from the records left."""
    mine = records.select("source", "file_sha256", "row_number")
    found: dict[str, int] = {}
    places = [(settings.warehouse_path, "")]
    if settings.snapshot_path.exists():
        places.append((settings.snapshot_path, "snapshot:"))
    for path, label in places:
        with warehouse.read_only(path) as conn:
            present = set(warehouse.existing_tables(conn))
            conn.register("_mine", mine.with_columns(_record_key()))
            try:
                for spec in warehouse.personal_tables():
                    if spec.name not in present or spec.name == "privacy.subjects":
                        continue
                    where = _reference(spec)
                    if where is None:
                        continue
                    (n,) = conn.execute(
                        f"SELECT count(*) FROM {spec.name} t WHERE {where}"
                    ).fetchall()[0]
                    found[label + spec.name] = n
            finally:
                conn.unregister("_mine")
    return found


def _record_key() -> pl.Expr:
    return pl.concat_str(
        pl.col("source"), pl.col("file_sha256"), pl.col("row_number").cast(pl.String), separator=":"
    ).alias("record_key")


def _reference(spec: warehouse.Table) -> str | None:
    """SQL condition on `t` for rows of the table referring to one of `_mine`'s records."""
    columns = {c.name for c in spec.columns}
    if "record_key" in columns:
        return "t.record_key IN (SELECT record_key FROM _mine)"
    if {"file_sha256", "row_number"} <= columns:
        return (
            "EXISTS (SELECT 1 FROM _mine m WHERE m.file_sha256 = t.file_sha256 "
            "AND m.row_number = t.row_number)"
        )
    return None
