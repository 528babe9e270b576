"""Name normalisation for French partner files, as vectorised Polars expressions.

Names arrive typed by hand: upper or mixed case, with or without accents,
hyphens, apostrophes, particles (DE LA, EL, BEN…), compound first names. These
expressions bring every spelling of one name to one form, and give a phonetic
code suited to French names so that the common misspellings meet.
"""

from __future__ import annotations

import polars as pl
from anyascii import anyascii

PARTICLES = (
    "DE",
    "DU",
    "DES",
    "LA",
    "LE",
    "LES",
    "D",
    "L",
    "EL",
    "AL",
    "BEN",
    "BOU",
    "VAN",
    "VON",
    "DA",
    "DOS",
    "DI",
    "DEL",
    "MAC",
    "MC",
)

# ordered rewrites: what French spelling writes several ways, said once
_PHONETIC_REWRITES = (
    ("SCH", "X"),
    ("SH", "X"),
    ("CH", "X"),
    ("PH", "F"),
    ("TH", "T"),
    ("BV", "V"),
    ("GUE", "GE"),
    ("GUI", "GI"),
    ("QU", "K"),
    ("Q", "K"),
    ("CK", "K"),
    ("CE", "SE"),
    ("CI", "SI"),
    ("CY", "SI"),
    ("C", "K"),
    ("GE", "JE"),
    ("GI", "JI"),
    ("GN", "NI"),
    ("W", "V"),
    ("Y", "I"),
    ("Z", "S"),
    ("EAU", "O"),
    ("AU", "O"),
    ("OU", "U"),
    ("AI", "E"),
    ("EI", "E"),
    ("EN", "AN"),
    ("EM", "AN"),
    ("AM", "AN"),
    ("H", ""),
)
_LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def _ascii(values: pl.Series) -> pl.Series:
    # Ł, ø, Đ, ß, æ do not decompose under NFKD: a transliteration table keeps their letter
    return pl.Series([None if v is None else anyascii(v) for v in values], dtype=pl.String)


def clean(expr: pl.Expr) -> pl.Expr:
    """Upper case, transliterated to ASCII ("Łukasz Wałęsa" -> "LUKASZ WALESA"), letters and
    single spaces only (hyphens and apostrophes split). Python per value: apply it to distinct
    spellings."""
    return (
        # symbols are not letters of a name: anyascii would spell them (° -> "deg", € -> "EUR")
        expr.str.replace_all(r"[^\p{L}\p{M}]+", " ")
        .map_batches(_ascii, return_dtype=pl.String)
        .str.to_uppercase()
        .str.replace_all(r"[^A-Z]+", " ")
        .str.strip_chars()
        .replace("", None)
    )


def compact(cleaned: pl.Expr) -> pl.Expr:
    """One token: "DE LA FONTAINE" -> "DELAFONTAINE" (spacing typed either way meets)."""
    return cleaned.str.replace_all(" ", "")


def without_particles(cleaned: pl.Expr) -> pl.Expr:
    """ "DE LA FONTAINE" -> "FONTAINE", "EL IDRISSI" -> "IDRISSI"; a bare particle stays."""
    pattern = r"^(?:(?:" + "|".join(PARTICLES) + r") )+"
    stripped = cleaned.str.replace(pattern, "")
    return compact(pl.when(stripped.str.len_chars() > 0).then(stripped).otherwise(cleaned))


def first_part(cleaned: pl.Expr) -> pl.Expr:
    """First word of a compound first name: "MARIE CLAIRE" -> "MARIE"."""
    return cleaned.str.split(" ").list.first()


def phonetic(compacted: pl.Expr) -> pl.Expr:
    """A French phonetic key: LEFEBVRE/LEFEVRE, MOHAMMED/MOHAMED, KEVIN/QUEVIN meet."""
    out = _single_letters(compacted)  # MOHAMMED and MOHAMED must reach the rewrites alike
    for before, after in _PHONETIC_REWRITES:
        out = out.str.replace_all(before, after, literal=True)
    out = _single_letters(out)
    # silent endings: -ER/-EZ/-ET sound E; a final E, S, T, D or X is not heard
    out = out.str.replace(r"(ER|EZ|ET)$", "E").str.replace(r"[ESTDX]+$", "")
    return pl.when(out.str.len_chars() > 0).then(out).otherwise(compacted)


def _single_letters(expr: pl.Expr) -> pl.Expr:
    for letter in _LETTERS:
        expr = expr.str.replace_all(letter + letter, letter, literal=True)
    return expr


def one_typo_away(compacted: str) -> list[str]:
    """The name and every spelling with one letter deleted: two names one typo apart (a
    substitution, deletion, insertion or transposition) always share one of these forms."""
    return [compacted, *{compacted[:i] + compacted[i + 1 :] for i in range(len(compacted))}]
