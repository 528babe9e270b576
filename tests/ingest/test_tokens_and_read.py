"""Keyed tokens and the tolerant reader's building blocks."""

from __future__ import annotations

from datetime import date

import polars as pl
import pytest

from synchro_dagster.identity import normalise as nm
from synchro_dagster.identity.tokens import TOKEN_CHARS, keyed, tokenise
from synchro_dagster.ingest.canonical import parse_date, split_full_name
from synchro_dagster.ingest.read import decode, sniff_delimiter

KEY = b"tokens-test-key-0123456789abcdef"


def people(*rows: tuple) -> pl.DataFrame:
    return pl.DataFrame(
        [
            dict(zip(("last_name", "first_name", "birth_name", "birth_date"), r, strict=True))
            | {
                "birth_year_only": r[3] is not None and (r[3].day, r[3].month) == (1, 1),
                "source": "sne",
                "record_ref": "R1",
                "household_ref": "H1",
            }
            for r in rows
        ],
        schema={
            "last_name": pl.String,
            "first_name": pl.String,
            "birth_name": pl.String,
            "birth_date": pl.Date,
            "birth_year_only": pl.Boolean,
            "source": pl.String,
            "record_ref": pl.String,
            "household_ref": pl.String,
        },
    )


def test_tokens_are_keyed_hex_and_stable():
    a = tokenise(people(("Martin", "Jean", None, date(1980, 5, 4))), KEY)
    b = tokenise(people(("Martin", "Jean", None, date(1980, 5, 4))), KEY)
    other = tokenise(people(("Martin", "Jean", None, date(1980, 5, 4))), b"another-key-0123456789")
    assert a.equals(b)
    assert a["tok_last"][0] != other["tok_last"][0]
    assert a["tok_last"][0] == keyed(KEY, "name", "MARTIN")
    for value in a.row(0):
        if value is not None:
            for token in value.split(" "):  # typo forms: several tokens in one cell
                assert len(token) == TOKEN_CHARS and int(token, 16) >= 0
            assert "MARTIN" not in value.upper() and "1980" not in value


def test_names_one_typo_apart_share_a_token():
    t = tokenise(
        people(
            ("MARTIN", "Jean", None, None),
            ("MARTN", "Jaen", None, None),
            ("MARITN", "Jean", None, None),
            ("DURAND", "Paul", None, None),
        ),
        KEY,
    )
    forms = [set(v.split(" ")) for v in t["tok_last_typo"]]
    assert forms[0] & forms[1] and forms[0] & forms[2]  # deletion, transposition
    assert not forms[0] & forms[3]
    first = [set(v.split(" ")) for v in t["tok_first_typo"]]
    assert first[0] & first[1]  # JEAN / JAEN


def test_short_key_refused():
    with pytest.raises(ValueError, match="too short"):
        tokenise(people(("A", "B", None, None)), b"short")


def test_spelling_variants_meet():
    t = tokenise(
        people(
            ("Lefèvre", "Jean-Pierre", None, None),
            ("LEFEVRE", "JEAN PIERRE", None, None),
            ("  le-fèvre ", "jean-pierre", None, None),
        ),
        KEY,
    )
    assert t["tok_last"].n_unique() == 1 and t["tok_first"].n_unique() == 1
    assert t["tok_first_first"][0] == keyed(KEY, "name", "JEAN")


def test_particles_and_swapped_names():
    t = tokenise(
        people(
            ("DE LA FONTAINE", "Marie", None, None),
            ("Fontaine", "Marie", None, None),
            ("Marie", "DELAFONTAINE", None, None),
        ),
        KEY,
    )
    assert t["tok_last_core"][0] == t["tok_last_core"][1]
    assert t["tok_name_sorted"][0] == t["tok_name_sorted"][2]  # first and last swapped
    assert t["tok_name"][0] != t["tok_name"][2]


def test_birth_date_parts_and_placeholder():
    t = tokenise(
        people(
            ("A", "B", None, date(1985, 3, 7)),
            ("A", "B", None, date(1985, 7, 3)),
            ("A", "B", None, date(1985, 1, 1)),
        ),
        KEY,
    )
    assert t["tok_dob_swapped"][0] == t["tok_dob"][1]  # 07/03 typed 03/07
    assert t["tok_dob"][2] is None and t["tok_birth_md"][2] is None  # 01/01: the year only
    assert t["tok_birth_year"][2] == t["tok_birth_year"][0]


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("LEFEBVRE", "LEFEVRE"),
        ("MOHAMED", "MOHAMMED"),
        ("KEVIN", "QUEVIN"),
        ("PHILIPPE", "FILIPE"),
        ("GAUTHIER", "GAUTIER"),
        ("CATHERINE", "KATHERINE"),
    ],
)
def test_phonetic_code_joins_french_spellings(a, b):
    codes = pl.DataFrame({"n": [a, b]}).select(nm.phonetic(pl.col("n")))["n"]
    assert codes[0] == codes[1]


def test_phonetic_code_keeps_different_names_apart():
    codes = pl.DataFrame({"n": ["MARTIN", "MARCHAND", "DIALLO", "DIARRA"]}).select(
        nm.phonetic(pl.col("n"))
    )["n"]
    assert codes.n_unique() == 4


def test_encodings_and_delimiters():
    assert decode("Prénom;Nom".encode("cp1252")) == "Prénom;Nom"
    assert decode(b"\xef\xbb\xbf" + "Prénom".encode()) == "Prénom"
    assert decode("Prénom".encode()) == "Prénom"
    assert sniff_delimiter("a;b;c\n1;2;3\n") == ";"
    assert sniff_delimiter("a,b,c\n1,2,3\n") == ","
    assert sniff_delimiter("a\tb\tc\n1\t2\t3\n") == "\t"
    assert sniff_delimiter("Titre\n\na,b;c;d\n1,5;2;3\n") == ";"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("45658", date(2025, 1, 1)),
        ("45658.0", date(2025, 1, 1)),
        ("2025-03-01 00:00:00", date(2025, 3, 1)),
        ("01/03/2025", date(2025, 3, 1)),
        ("1/3/2025", date(2025, 3, 1)),
        ("01.03.2025", date(2025, 3, 1)),
        ("01/03/25", date(2025, 3, 1)),
        ("2025-03-01", date(2025, 3, 1)),
        ("31/02/1987", None),
        ("bientôt", None),
        ("", None),
    ],
)
def test_dates_in_every_form_partners_send(text, expected):
    out = pl.DataFrame({"d": [text]}).select(parse_date(pl.col("d")))["d"][0]
    assert out == expected


@pytest.mark.parametrize(
    ("full", "last", "first"),
    [
        ("DE LA FONTAINE Marie-Claire", "DE LA FONTAINE", "Marie-Claire"),
        ("MARTIN Jean", "MARTIN", "Jean"),
        ("DUPONT PIERRE", "DUPONT", "PIERRE"),
        ("N'GUESSAN Adjoua", "N'GUESSAN", "Adjoua"),
        ("Diallo", "Diallo", None),
    ],
)
def test_nom_prenom_in_one_column(full, last, first):
    l_expr, f_expr = split_full_name(pl.col("x"))
    out = pl.DataFrame({"x": [full]}).select(l_expr.alias("l"), f_expr.alias("f"))
    assert (out["l"][0], out["f"][0]) == (last, first)
