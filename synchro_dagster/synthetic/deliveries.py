"""Partner deliveries: which records each partner writes for a month, and the files themselves.

Row builders turn a `HouseholdMonth` into the rows a partner would list, each
person's identity rendered with that partner's noise. Writers lay the rows out
as the partner's tool does (CSV export, hand-kept workbook with a title block,
merged cells, blank rows and a totals line) and report, for every row, the row
number a person sees when opening the file.
"""

from __future__ import annotations

import csv
import random
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path

import xlsxwriter

from synchro_dagster.publish import french
from synchro_dagster.synthetic import layouts as L
from synchro_dagster.synthetic.noise import render
from synchro_dagster.synthetic.params import TerritoryParams
from synchro_dagster.synthetic.territory import COUPLES, HouseholdMonth, Person

EXCEL_EPOCH = date(1899, 12, 30)
SHELTER_BOOKED = ("MISE_ABRI", "HOTEL")  # the 115 books these places: it lists their guests
INSERTION_PROVIDED = ("HEB_INSERTION",)  # admitted on an SI-SIAO insertion request
DEFECTS = ("no_name", "impossible_date", "unknown_code")


@dataclass(slots=True)
class Row:
    layout: L.Layout
    cells: dict[str, object]
    person_id: int
    household_id: int
    noise: list[str]
    defect: str | None = None


@dataclass(slots=True)
class TruthRecord:
    month: date
    source: str
    file: str
    row_number: int
    person_id: int
    household_id: int
    defect: str | None
    noise: list[str]


@dataclass
class MonthContext:
    index: int
    first: date
    n_days: int
    rng: random.Random
    params: TerritoryParams
    persons: dict[int, Person]
    counters: Counter[str]
    shared: dict[int, float] = field(default_factory=dict)  # household id -> shared draw

    def day(self, d: int | None = None) -> date:
        return self.first + timedelta(days=(d or self.rng.randint(1, self.n_days)) - 1)

    def sees(self, hm: HouseholdMonth, source: str, situation: str, shared: float | None) -> bool:
        """Whether `source` lists the household this month (params.HiddenPart): the visibility
        of its situation, bent by the household's contact with street services; `shared`, when
        given, is the household-month's draw another source's listing also uses."""
        hidden = self.params.hidden
        visibility = self.params.profiles[source].visibility.get(situation, 0.0)
        if source in hidden.contact_sources and hm.household.contact != 1.0:
            visibility = 1 - (1 - visibility) ** hm.household.contact
        return (self.rng.random() if shared is None else shared) < visibility

    def shared_draw(self, hm: HouseholdMonth, dependence: float) -> float | None:
        """The household-month's draw shared by dependent sources, in `dependence` of cases."""
        if dependence <= 0 or self.rng.random() >= dependence:  # off: no draw at all
            return None
        return self.shared.setdefault(hm.household.id, self.rng.random())

    def ref(self, hm: HouseholdMonth, key: str, fmt: str) -> str:
        refs = hm.household.refs
        if key not in refs:
            self.counters[key] += 1
            refs[key] = fmt.format(n=self.counters[key], y=self.first.year)
        return refs[key]


def _stable(hm: HouseholdMonth, options: list[str] | tuple[str, ...]) -> str:
    return options[hm.household.id % len(options)]


def _role_index(hm: HouseholdMonth, i: int) -> int:
    """0 principal, 1 spouse, 2 child, 3 other adult."""
    if i == 0:
        return 0
    if hm.household.composition in COUPLES and i == 1:
        return 1
    return 3 if hm.household.composition == "groupe_adultes" else 2


def _person_row(
    ctx: MonthContext, hm: HouseholdMonth, layout: L.Layout, pid: int, cells: dict[str, object]
) -> Row:
    person = ctx.persons[pid]
    ident = person.identity
    profile = ctx.params.profiles[layout.source]
    with_birth_name = any(c.key == "nom_naissance" for c in layout.columns)
    r = render(
        ctx.rng, ident, ctx.first, ctx.params.noise, profile, with_birth_name_column=with_birth_name
    )
    names = (r.last_name, r.first_name, r.birth_name or "")
    if layout.fmt == "csv":
        # a cp1252 export has no Ł or Đ: the partner's tool writes "?" in their place
        shown = tuple(n.encode(layout.encoding, "replace").decode(layout.encoding) for n in names)
        if shown != names:
            r.noise.append("letters_replaced")
            names = shown
    cells.update(
        nom=names[0],
        prenom=names[1],
        nom_naissance=names[2],
        naissance=r.birth_date,
        age=r.age,
        sexe=layout.sex[0] if ident.sex == "M" else layout.sex[1],
    )
    return Row(layout, cells, pid, hm.household.id, r.noise)


def _adults(ctx: MonthContext, hm: HouseholdMonth) -> list[int]:
    out = [
        pid
        for pid in hm.members
        if (ctx.first - ctx.persons[pid].identity.birth_date).days >= 18 * 365.25
    ]
    return out or [hm.members[0]]


def _destination(ctx: MonthContext, key: str) -> str:
    if key == "housing:adapted":
        return ctx.rng.choice(("Pension de famille", "Résidence sociale"))
    return L.DESTINATION[key]


# ------------------------------------------------------------------ row builders
def siao_insertion(ctx: MonthContext, hm: HouseholdMonth) -> list[Row]:
    since = hm.enrolled.get("siao_insertion")
    if since is None:
        return []
    shared = (
        ctx.shared_draw(hm, ctx.params.hidden.insertion_dependence)
        if hm.situation in INSERTION_PROVIDED
        else None
    )
    if hm.exit is None and (ctx.rng.random() if shared is None else shared) > (
        ctx.params.request_visibility
    ):
        return []
    s = hm.situation
    if hm.exit:
        statut = "Sortie"
    elif s in ("HEB_INSERTION", "LOG_TEMP"):
        statut = "Admise"
    else:
        statut = "Orientée" if ctx.index - since >= 2 else "En attente"
    compo = hm.household.composition
    if compo == "famille_monoparentale" and ctx.persons[hm.members[0]].identity.sex == "M":
        compo = "famille_monoparentale_h"
    base = {
        "rec": ctx.ref(hm, "siao_demande", "D{y}{n:06d}"),
        "ref": ctx.ref(hm, "siao_groupe", "G{n:07d}"),
        "since": ctx.first - timedelta(days=30 * (ctx.index - since) + 3),
        "compo": L.SIAO_COMPOSITION[compo],
        "situation": _stable(hm, L.SIAO_SITUATION[s]),
        "preco": _stable(
            hm,
            (
                "CHRS",
                "Stabilisation",
                "IML",
                "Pension de famille",
                "Logement ordinaire",
                "Résidence sociale",
            ),
        ),
        "statut": statut,
        "date": ctx.day(hm.change_day if hm.exit else None),
        "entree": hm.since if statut == "Admise" else None,
        "sortie": ctx.day(hm.change_day) if hm.exit else None,
        "destination": _destination(ctx, hm.exit) if hm.exit else "",
    }
    return [
        _person_row(
            ctx, hm, L.SIAO_INSERTION, pid, {**base, "role": L.SIAO_ROLE[_role_index(hm, i)]}
        )
        for i, pid in enumerate(hm.members)
    ]


def siao_urgence(ctx: MonthContext, hm: HouseholdMonth) -> list[Row]:
    rng, s = ctx.rng, hm.situation
    shared = (
        ctx.shared_draw(hm, ctx.params.hidden.shelter_dependence) if s in SHELTER_BOOKED else None
    )
    if not ctx.sees(hm, "siao_urgence", s, shared):
        return []
    rows = []
    ref = ctx.ref(hm, "siao_urgence", "M{n:06d}")
    for _ in range(rng.randint(1, 2 if s == "HOTEL" else 3)):
        fulfilled = rng.random() < (0.95 if s in ("MISE_ABRI", "HOTEL") else 0.45)
        ctx.counters["115_request"] += 1
        base = {
            "date": datetime.combine(ctx.day(), datetime.min.time()).replace(
                hour=rng.randint(0, 23)
            ),
            "ref": ref,
            "rec": f"DU{ctx.first.year}{ctx.counters['115_request']:07d}",
            "compo": L.COMPOSITION_LABEL[hm.household.composition],
            "nb": len(hm.members),
            "situation": L.URGENCE_SITUATION[s],
            "reponse": "Pourvue" if fulfilled else "Non pourvue",
            "motif": ""
            if fulfilled
            else rng.choice(
                ("Absence de place disponible", "Absence de place adaptée", "Refus de la personne")
            ),
            "structure": rng.choice(("CHU Le Renouveau", "Hôtel", "Halte de nuit"))
            if fulfilled
            else "",
        }
        rows += [_person_row(ctx, hm, L.SIAO_URGENCE, pid, dict(base)) for pid in hm.members]
    return rows


def _street_reference(
    ctx: MonthContext, hm: HouseholdMonth, layout: L.Layout
) -> tuple[L.Layout, dict[str, object]]:
    """The layout a street service's row is written with and its reference cell: with
    `street_references`, the column is there and the household's reference in it for that share
    of households (by household id: no random draw, so the rest of the territory is the same)."""
    share = ctx.params.street_references
    if share <= 0:
        return layout, {}
    if hm.household.id % 100 >= round(share * 100):
        return L.with_reference(layout), {"ref": None}
    ref = ctx.ref(hm, layout.file_name, "{n:05d}")  # one numbering per service, as providers'
    service = layout.file_name.split("_{month}")[0].rsplit("_", 1)[-1]  # maraudes, passerelle
    return L.with_reference(layout), {"ref": f"{service[:4].upper()}-{ref}"}


def maraudes(ctx: MonthContext, hm: HouseholdMonth) -> list[Row]:
    rng, s = ctx.rng, hm.situation
    if not ctx.sees(hm, "maraudes", s, None):
        return []
    layout, reference = _street_reference(ctx, hm, L.MARAUDES)
    adults = _adults(ctx, hm)
    children = len(hm.members) - len(adults)
    rows = []
    for _ in range(rng.randint(1, 2)):
        met = adults if rng.random() < 0.6 else [adults[0]]
        for pid in met:
            row = _person_row(
                ctx,
                hm,
                layout,
                pid,
                {
                    **reference,
                    "date": ctx.day(),
                    "equipe": rng.choice(("Samu social", "Croix-Rouge", "Équipe de rue")),
                    "lieu": rng.choice(L.MARAUDE_SPOTS),
                    "situation": rng.choice(L.MARAUDE_PLACE[s]),
                    "enfants": children or None,
                    "observations": rng.choice(
                        (
                            "",
                            "",
                            "Orienté(e) vers le 115",
                            "Refus de contact",
                            "Café, échange",
                            "Besoin de soins",
                            "Connu(e) de l'équipe",
                        )
                    ),
                },
            )
            c = row.cells
            last = str(c["nom"]).upper() if rng.random() < 0.8 else c["nom"]
            c["nom_prenom"] = f"{last} {c['prenom']}".strip()
            if c["age"] is not None:
                c["age"] = rng.choice(("{a}", "env. {a} ans", "~{a}", "{a} ans")).format(a=c["age"])
            rows.append(row)
    return rows


def accueils_jour(ctx: MonthContext, hm: HouseholdMonth) -> list[Row]:
    rng, s = ctx.rng, hm.situation
    if not ctx.sees(hm, "accueils_jour", s, None):
        return []
    layout, reference = _street_reference(ctx, hm, L.ACCUEILS_JOUR[hm.household.id % 2])
    adults = _adults(ctx, hm)
    visitor = adults[0] if rng.random() < 0.8 else rng.choice(adults)
    domiciled = "Oui" if hm.household.id % 3 else "Non"
    return [
        _person_row(
            ctx,
            hm,
            layout,
            visitor,
            {
                **reference,
                "date": ctx.day(),
                "domiciliation": domiciled,
                "situation": rng.choice(L.DAY_CENTRE_SLEEP[s]),
                "nb": len(hm.members),
            },
        )
        for _ in range(rng.randint(1, 4))
    ]


def _occupancy_rows(
    ctx: MonthContext,
    hm: HouseholdMonth,
    layout: L.Layout,
    roles: tuple[str, str, str],
    entry: date,
    exit_day: int | None,
    destination: str,
    dispositif: str,
) -> list[Row]:
    ref = ctx.ref(hm, layout.file_name, "{n:05d}")
    rows = []
    for i, pid in enumerate(hm.members):
        role = roles[min(_role_index(hm, i), 2)] if _role_index(hm, i) < 3 else roles[0]
        rows.append(
            _person_row(
                ctx,
                hm,
                layout,
                pid,
                {
                    "ref": f"{layout.file_name[:3].upper()}-{ref}",
                    "role": role,
                    "dispositif": dispositif,
                    "entree": entry,
                    "sortie": ctx.day(exit_day) if exit_day else None,
                    "destination": destination,
                },
            )
        )
    return rows


def hebergement(ctx: MonthContext, hm: HouseholdMonth) -> list[Row]:
    vis = ctx.params.profiles["hebergement"].visibility
    rows: list[Row] = []

    def dispositif(s: str) -> str:
        options = {"HEB_INSERTION": ("CHRS", "CHRS", "Stabilisation"), "ASILE": ("HUDA", "CADA")}
        return _stable(hm, options.get(s, (L.HEBERGEMENT[s].extra.get("dispositif", ""),)))

    prev = hm.previous_situation
    if prev in L.HEBERGEMENT and ctx.rng.random() < vis[prev]:
        assert hm.previous_since is not None
        rows += _occupancy_rows(
            ctx,
            hm,
            L.HEBERGEMENT[prev],
            L.HEB_ROLE[prev],
            hm.previous_since,
            hm.change_day,
            L.DESTINATION[hm.situation],
            dispositif(prev),
        )
    s = hm.situation
    hidden = ctx.params.hidden
    dependence = hidden.shelter_dependence if s in SHELTER_BOOKED else hidden.insertion_dependence
    if s in L.HEBERGEMENT and ctx.sees(hm, "hebergement", s, ctx.shared_draw(hm, dependence)):
        rows += _occupancy_rows(
            ctx,
            hm,
            L.HEBERGEMENT[s],
            L.HEB_ROLE[s],
            hm.since,
            hm.change_day if hm.exit else None,
            _destination(ctx, hm.exit) if hm.exit else "",
            dispositif(s),
        )
    return rows


def logement_accompagne(ctx: MonthContext, hm: HouseholdMonth) -> list[Row]:
    rng, layout = ctx.rng, L.LOGEMENT_ACCOMPAGNE
    roles = ("Titulaire", "Co-titulaire", "Enfant")
    rows: list[Row] = []
    if hm.previous_situation == "LOG_TEMP" and rng.random() < 0.95:
        assert hm.previous_since is not None
        rows += _occupancy_rows(
            ctx,
            hm,
            layout,
            roles,
            hm.previous_since,
            hm.change_day,
            L.DESTINATION[hm.situation],
            "IML",
        )
    if hm.situation == "LOG_TEMP" and rng.random() < 0.95:
        rows += _occupancy_rows(
            ctx,
            hm,
            layout,
            roles,
            hm.since,
            hm.change_day if hm.exit else None,
            _destination(ctx, hm.exit) if hm.exit else "",
            "IML",
        )
    if hm.exit in ("housing:adapted", "housing:housing_first") and rng.random() < 0.95:
        kind = (
            "Un chez-soi d'abord"
            if hm.exit == "housing:housing_first"
            else _stable(hm, ("Pension de famille", "Résidence sociale"))
        )
        rows += _occupancy_rows(ctx, hm, layout, roles, ctx.day(hm.change_day), None, "", kind)
    return rows


def _principal_row(
    ctx: MonthContext, hm: HouseholdMonth, layout: L.Layout, cells: dict[str, object]
) -> list[Row]:
    return [_person_row(ctx, hm, layout, hm.members[0], cells)]


def syplo(ctx: MonthContext, hm: HouseholdMonth) -> list[Row]:
    since = hm.enrolled.get("syplo")
    if since is None or (hm.exit is None and ctx.rng.random() > ctx.params.listed_visibility):
        return []
    housed = hm.exit == "housing:social"
    if hm.exit and not housed:
        return []
    return _principal_row(
        ctx,
        hm,
        L.SYPLO,
        {
            "ref": ctx.ref(hm, "syplo", "21-{y}-{n:05d}"),
            "since": ctx.first - timedelta(days=30 * (ctx.index - since) + 5),
            "compo": L.COMPOSITION_LABEL[hm.household.composition],
            "nb": len(hm.members),
            "situation": L.SYPLO_SITUATION[hm.situation],
            "statut": "Relogé"
            if housed
            else _stable(hm, ("Labellisé", "Labellisé", "Proposition en cours")),
            "sortie": ctx.day(hm.change_day) if housed else None,
            "date": ctx.day(hm.change_day if hm.exit else None),
        },
    )


def sne(ctx: MonthContext, hm: HouseholdMonth) -> list[Row]:
    since = hm.enrolled.get("sne")
    if since is None or hm.household.composition not in L.SNE_COMPOSITION:
        return []
    housed = hm.exit == "housing:social"
    if (hm.exit and not housed) or (
        not hm.exit and ctx.rng.random() > ctx.params.listed_visibility
    ):
        return []
    return _principal_row(
        ctx,
        hm,
        L.SNE,
        {
            "ref": ctx.ref(hm, "sne", "02112{y}{n:06d}"),
            "since": ctx.first - timedelta(days=30 * (ctx.index - since) + 11),
            "date": ctx.day(),
            "nb": len(hm.members),
            "compo": L.SNE_COMPOSITION[hm.household.composition],
            "situation": L.SNE_SITUATION[hm.situation],
            "statut": "RADIEE" if housed else "ACTIVE",
            "sortie": ctx.day(hm.change_day) if housed else None,
            "destination": "RADATT" if housed else "",
        },
    )


def dalo(ctx: MonthContext, hm: HouseholdMonth) -> list[Row]:
    since = hm.enrolled.get("dalo")
    if since is None:
        return []
    decided = ctx.index - since >= 2
    rehoused = hm.exit in ("housing:social", "housing:private")
    if hm.exit and not rehoused:
        return []
    return _principal_row(
        ctx,
        hm,
        L.DALO,
        {
            "ref": ctx.ref(hm, "dalo", "DALO-21-{y}-{n:04d}"),
            "since": ctx.first - timedelta(days=30 * (ctx.index - since) + 9),
            "compo": L.COMPOSITION_LABEL[hm.household.composition],
            "situation": L.SYPLO_SITUATION[hm.situation],
            "date": ctx.first - timedelta(days=30 * (ctx.index - since - 2) + 1)
            if decided
            else None,
            "statut": _stable(hm, ("Favorable prioritaire et urgent",) * 3 + ("Rejet",))
            if decided
            else "En instruction",
            "sortie": ctx.day(hm.change_day) if rehoused else None,
        },
    )


BUILDERS = {
    "siao_insertion": siao_insertion,
    "siao_urgence": siao_urgence,
    "maraudes": maraudes,
    "accueils_jour": accueils_jour,
    "hebergement": hebergement,
    "logement_accompagne": logement_accompagne,
    "syplo": syplo,
    "sne": sne,
    "dalo": dalo,
}


def break_some(ctx: MonthContext, rows: list[Row]) -> None:
    """Makes a configured share of rows unusable, as real deliveries sometimes are."""
    rng = ctx.rng
    for row in rows:
        if rng.random() >= ctx.params.defect_rate:
            continue
        row.defect = rng.choice(DEFECTS)
        c = row.cells
        if row.defect == "no_name":
            c.update(nom="", prenom="", nom_naissance="", nom_prenom="")
        elif row.defect == "impossible_date":
            year = rng.randint(1950, 2005)
            iso = any(
                col.key == "naissance" and col.kind == "iso_date" for col in row.layout.columns
            )
            c["naissance"] = f"{year}-02-31" if iso else f"31/02/{year}"
        else:
            key = row.layout.coded_key
            assert key is not None
            c[key] = "99 - Code inconnu" if key == "situation" else "XX"


# ------------------------------------------------------------------ writers
def _text(value: object, kind: str) -> str:
    if value is None or value == "":
        return ""
    if isinstance(value, datetime):
        value = value.date()
    if isinstance(value, date):
        return value.isoformat() if kind == "iso_date" else value.strftime("%d/%m/%Y")
    return str(value)


def write_csv(path: Path, layout: L.Layout, rows: list[Row]) -> list[int]:
    with path.open("w", encoding=layout.encoding, newline="") as f:
        w = csv.writer(f, delimiter=layout.delimiter, lineterminator="\r\n")
        w.writerow([c.header for c in layout.columns])
        for row in rows:
            w.writerow([_text(row.cells.get(c.key), c.kind) for c in layout.columns])
    return list(range(2, len(rows) + 2))


def write_xlsx(path: Path, layout: L.Layout, rows: list[Row], label: str) -> list[int]:
    wb = xlsxwriter.Workbook(str(path), {"constant_memory": True})
    bold = wb.add_format({"bold": True, "font_size": 13})
    head = wb.add_format({"bold": True, "bg_color": "#DDEBF7", "border": 1, "text_wrap": True})
    date_fmt = wb.add_format({"num_format": "dd/mm/yyyy"})
    datetime_fmt = wb.add_format({"num_format": "dd/mm/yyyy hh:mm"})
    if layout.decoy_sheet:
        decoy = wb.add_worksheet(layout.decoy_sheet)
        decoy.write(0, 0, f"Synthèse {label}", bold)
        decoy.write_row(2, 0, ["Indicateur", "Valeur"])
        decoy.write_row(3, 0, ["Rencontres", len(rows)])
    ws = wb.add_worksheet(layout.sheet)
    ncol = len(layout.columns)
    r = 0
    for i, line in enumerate(layout.title):
        text = line.format(label=label)
        if i == 0 and ncol > 1:
            ws.merge_range(r, 0, r, ncol - 1, text, bold)
        else:
            ws.write_string(r, 0, text)
        r += 1
    if layout.title:
        r += 1  # a blank line between the title block and the header
    ws.write_row(r, 0, [c.header for c in layout.columns], head)
    r += 1
    numbers: list[int] = []
    week = None
    for row in rows:
        if layout.blank_row_every_week:
            d = row.cells.get("date")
            w = d.isocalendar()[1] if isinstance(d, date) else None
            if week is not None and w != week:
                r += 1
            week = w
        for j, col in enumerate(layout.columns):
            v = row.cells.get(col.key)
            if v is None or v == "":
                continue
            if isinstance(v, date) and col.kind == "date":
                dt = v if isinstance(v, datetime) else datetime(v.year, v.month, v.day)
                ws.write_datetime(r, j, dt, datetime_fmt if isinstance(v, datetime) else date_fmt)
            elif isinstance(v, date) and col.kind == "serial":
                ws.write_number(
                    r, j, ((v.date() if isinstance(v, datetime) else v) - EXCEL_EPOCH).days
                )
            elif isinstance(v, int | float) and not isinstance(v, bool):
                ws.write_number(r, j, v)
            else:
                ws.write_string(r, j, _text(v, col.kind))
        numbers.append(r + 1)
        r += 1
    if layout.footer:
        ws.write_string(r + 1, 0, layout.footer.format(n=len(rows)))
    wb.close()
    return numbers


def write_month(landing: Path, month: date, rows: list[Row]) -> list[TruthRecord]:
    """Writes one month's deliveries under landing/<YYYY-MM>/<source>/ and returns the truth."""
    key = month.strftime("%Y-%m")
    label = f"{french.MONTHS[month.month - 1]} {month.year}"
    by_file: dict[tuple[str, str], list[Row]] = defaultdict(list)
    layouts: dict[tuple[str, str], L.Layout] = {}
    for row in rows:
        k = (row.layout.source, row.layout.file_name)
        by_file[k].append(row)
        layouts[k] = row.layout
    truth: list[TruthRecord] = []
    for k in sorted(by_file):
        layout, file_rows = layouts[k], by_file[k]
        file_rows.sort(key=lambda r: _sort_key(r.cells.get("date")))
        folder = landing / key / layout.source
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / layout.file_name.format(month=key)
        if layout.fmt == "csv":
            numbers = write_csv(path, layout, file_rows)
        else:
            numbers = write_xlsx(path, layout, file_rows, label)
        rel = path.relative_to(landing).as_posix()
        truth += [
            TruthRecord(
                month, layout.source, rel, n, row.person_id, row.household_id, row.defect, row.noise
            )
            for n, row in zip(numbers, file_rows, strict=True)
        ]
    return truth


def _sort_key(value: object) -> datetime:
    if isinstance(value, datetime):
        return value
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day)
    return datetime.min
