"""Name normalisation for French partner files, as vectorised Polars expressions.

Names arrive typed by hand: upper or mixed case, with or without accents,
hyphens, apostrophes, particles (DE LA, EL, BEN…), compound first names. These
expressions bring every spelling of one name to one form, and give a phonetic
code suited to French names so that the common misspellings meet.
"""

from __future__ import annotations

import re

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
    """A French phonetic key: LEFEBVRE/LEFEVRE, MOHAMMED/MOHAMED, KEVIN/QUEVIN meet. Python per
    value (some sixty string replacements each, in C: several times faster than as many Polars
    passes): apply it to distinct spellings."""
    return compacted.map_batches(
        lambda values: pl.Series([None if v is None else phonetic_code(v) for v in values]),
        return_dtype=pl.String,
    )


_HEARD_AS_E = re.compile(r"(?:ER|EZ|ET)\Z")  # silent endings: -ER/-EZ/-ET sound E...
_NOT_HEARD = re.compile(r"[ESTDX]+\Z")  # ... and a final E, S, T, D or X is not heard


def phonetic_code(compacted: str) -> str:
    """`phonetic` of one value."""
    out = _single_letters(compacted)  # MOHAMMED and MOHAMED must reach the rewrites alike
    for before, after in _PHONETIC_REWRITES:
        out = out.replace(before, after)
    out = _single_letters(out)
    out = _NOT_HEARD.sub("", _HEARD_AS_E.sub("E", out, count=1), count=1)
    return out or compacted


# a letter typed twice, once (AAA -> AA, as 26 replacements in turn would leave it)
_DOUBLED = re.compile(r"([A-Z])\1")


def _single_letters(text: str) -> str:
    return _DOUBLED.sub(r"\1", text)


def one_typo_away(names: pl.DataFrame) -> pl.DataFrame:
    """Each compacted name `v` -> the name and every spelling with one letter deleted (`f`): two
    names one typo apart (a substitution, deletion, insertion or transposition) always share one
    of these forms."""
    at = names.with_columns(pl.int_ranges(0, pl.col("v").str.len_chars()).alias("i"))
    deleted = pl.col("v").str.slice(0, pl.col("i")) + pl.col("v").str.slice(pl.col("i") + 1)
    return pl.concat(
        [
            names.select("v", pl.col("v").alias("f")),
            at.explode("i").drop_nulls("i").select("v", deleted.alias("f")),
        ]
    )


# a name this long or longer also has its forms two letters short (`two_typos_away`): in a
# shorter one, two typos leave too little of the name to tell it from another; beyond the
# longest, its forms (n(n-1)/2 of them) would cost more than any name needs
TWO_TYPOS_MIN_LETTERS, TWO_TYPOS_MAX_LETTERS = 6, 40


def two_typos_away(names: pl.DataFrame) -> pl.DataFrame:
    """Each compacted name `v` of `TWO_TYPOS_MIN_LETTERS` to `TWO_TYPOS_MAX_LETTERS` letters ->
    every spelling with two letters deleted (`f`): two names two typos apart (FATOUMATA,
    FETOUMATO) share one of these, or one of these and one of the other's `one_typo_away`
    forms."""
    n = pl.col("v").str.len_chars()
    long = names.filter(n.is_between(TWO_TYPOS_MIN_LETTERS, TWO_TYPOS_MAX_LETTERS))
    at = long.with_columns(pl.int_ranges(0, n).alias("i")).explode("i")
    at = at.with_columns(pl.int_ranges(pl.col("i") + 1, n).alias("j")).explode("j").drop_nulls("j")
    v, i, j = pl.col("v"), pl.col("i"), pl.col("j")
    deleted = v.str.slice(0, i) + v.str.slice(i + 1, j - i - 1) + v.str.slice(j + 1)
    return at.select("v", deleted.alias("f"))
