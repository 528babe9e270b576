"""How a partner renders a true identity in one record: the typing noise of real files.

`render` returns what the partner's file shows plus the list of noise codes
applied, so that the truth can state them and tests can measure the rates.
"""

from __future__ import annotations

import random
import unicodedata
from dataclasses import dataclass, field
from datetime import date

from synchro_dagster.synthetic.names import Identity
from synchro_dagster.synthetic.params import NoiseRates, SourceProfile

_KEYBOARD_NEIGHBOURS = {
    "a": "zqs",
    "z": "aes",
    "e": "zrd",
    "r": "etf",
    "t": "ryg",
    "y": "tuh",
    "u": "yij",
    "i": "uok",
    "o": "ipl",
    "p": "om",
    "q": "asw",
    "s": "qdz",
    "d": "sfe",
    "f": "dgr",
    "g": "fht",
    "h": "gjy",
    "j": "hku",
    "k": "jli",
    "l": "kmo",
    "m": "lp",
    "w": "xq",
    "x": "wcs",
    "c": "xvd",
    "v": "cbf",
    "b": "vng",
    "n": "bmh",
}


@dataclass(slots=True)
class Rendered:
    last_name: str
    first_name: str
    birth_name: str | None  # shown only by sources that have a birth-name column
    birth_date: date | None
    age: int | None
    noise: list[str] = field(default_factory=list)


def strip_accents(text: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFD", text) if unicodedata.category(c) != "Mn")


def _typeable(text: str) -> list[int]:
    """Positions of the letters a typo may hit: people rarely mistype the first letter."""
    letters = [i for i, c in enumerate(text) if c.isalpha()]
    return letters[1:] if len(letters) >= 3 else []


def typo(rng: random.Random, text: str) -> str:
    positions = _typeable(text)
    return _typo_at(rng, text, rng.choice(positions)) if positions else text


def double_typo(rng: random.Random, text: str) -> str | None:
    """Two typos apart enough that the second cannot undo the first; None if the name is short."""
    positions = _typeable(text)
    pairs = [(i, j) for i in positions for j in positions if j - i >= 2]
    if not pairs:
        return None
    i, j = rng.choice(pairs)
    return _typo_at(rng, _typo_at(rng, text, j), i)  # the later one first: i stays in place


def _typo_at(rng: random.Random, text: str, i: int) -> str:
    c = text[i]
    op = rng.random()
    if op < 0.4:
        near = _KEYBOARD_NEIGHBOURS.get(strip_accents(c).lower(), "e")
        new = rng.choice(near)
        return text[:i] + (new.upper() if c.isupper() else new) + text[i + 1 :]
    if op < 0.6:
        return text[:i] + text[i + 1 :]
    if op < 0.8:
        return text[:i] + c + text[i:]
    j = i - 1
    if strip_accents(text[j]).lower() == strip_accents(c).lower():
        return text[:i] + c + text[i:]  # swapping two identical letters would change nothing
    return text[:j] + text[i] + text[j] + text[i + 1 :]


def _mistype(rng: random.Random, name: str, rates: NoiseRates, code: str, noise: list[str]) -> str:
    """The name as mistyped once, or twice for a share of names; flags what the file shows."""
    # no draw when double typos are off, so that the default territory stays the same for a seed
    twice = rates.double_typo > 0 and rng.random() < rates.double_typo
    typed = double_typo(rng, name) if twice else None
    if typed is not None:
        noise += [code, f"double_{code}"]
        return typed
    typed = typo(rng, name)
    if typed != name:  # a name too short to mistype (LE) stays as it is, and is not flagged
        noise.append(code)
    return typed


def _real_date(
    d: date, year: int | None = None, month: int | None = None, day: int | None = None
) -> date | None:
    try:
        return d.replace(year=year or d.year, month=month or d.month, day=day or d.day)
    except ValueError:
        return None


def render(
    rng: random.Random,
    ident: Identity,
    ref: date,
    rates: NoiseRates,
    profile: SourceProfile,
    *,
    with_birth_name_column: bool = False,
) -> Rendered:
    noise: list[str] = []
    first = ident.first_name
    if "-" in first and rng.random() < rates.compound_first_shortened:
        first = first.split("-")[0]
        noise.append("compound_first_shortened")
    last = ident.birth_last_name
    birth_name = None
    if ident.usage_last_name:
        if with_birth_name_column:
            last, birth_name = ident.usage_last_name, ident.birth_last_name
        elif rng.random() < rates.usage_name_shown:
            last = ident.usage_last_name
            noise.append("usage_name")
    if rng.random() < rates.typo_first_name:
        first = _mistype(rng, first, rates, "typo_first_name", noise)
    if rng.random() < rates.typo_last_name:
        last = _mistype(rng, last, rates, "typo_last_name", noise)
    if rng.random() < profile.accents_lost:
        first, last = strip_accents(first), strip_accents(last)
        birth_name = strip_accents(birth_name) if birth_name else None
        noise.append("accents_lost")
    if rng.random() < profile.upper_case:
        first, last = first.upper(), last.upper()
        noise.append("upper_case")
    else:
        last = last.title() if rng.random() < 0.5 else last
    if rng.random() < rates.first_last_swapped:
        first, last = last, first
        noise.append("first_last_swapped")

    born: date | None = ident.birth_date
    age = None
    if rng.random() < profile.age_instead_of_birth_date:
        true_age = int((ref - ident.birth_date).days / 365.25)
        age = max(0, true_age + rng.choice((-3, -2, -1, 0, 0, 0, 1, 2, 3)))
        born = None
        noise.append("age_instead_of_birth_date")
    elif rng.random() < rates.missing_birth_date + profile.extra_missing_birth_date:
        born = None
        noise.append("missing_birth_date")
    else:
        u = rng.random()
        swapped = _real_date(born, month=born.day, day=born.month) if born.day <= 12 else None
        if u < rates.day_month_swapped and swapped not in (None, born) and swapped < ref:
            born = swapped  # a swap that would give a date still to come is not typed
            noise.append("day_month_swapped")
        elif u < rates.day_month_swapped + rates.year_off_by_one:
            year = born.year + rng.choice((-1, 1))
            if year > ref.year or (year == ref.year and born.month >= ref.month):
                year = born.year - 1  # nobody types a birth date still to come
            born = _real_date(born, year=year) or date(year, born.month, 28)
            noise.append("year_off_by_one")
        elif u < rates.day_month_swapped + rates.year_off_by_one + rates.placeholder_birth_date:
            born = date(born.year, 1, 1)
            noise.append("placeholder_birth_date")
    return Rendered(last, first, birth_name, born, age, noise)
