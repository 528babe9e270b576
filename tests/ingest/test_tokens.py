"""Keyed identity tokens: what meets, what stays apart, and that nothing readable is left."""

from __future__ import annotations

import hashlib
import hmac
import random
import re
from datetime import date
from itertools import combinations

import polars as pl
import pytest

from synchro_dagster.identity import normalise as nm
from synchro_dagster.identity.tokens import (
    TOKEN_CHARS,
    TOKEN_COLUMNS,
    _Keyed,
    identity_inputs,
    identity_keys,
    keyed,
    tokenise,
)

KEY = b"tokens-test-key-0123456789abcdef"
HEX_TOKENS = re.compile(rf"^[0-9a-f]{{{TOKEN_CHARS}}}( [0-9a-f]{{{TOKEN_CHARS}}})*$")


def people(*rows: tuple, source: str = "sne") -> pl.DataFrame:
    """(last name, first name, birth date[, birth name]) -> the input `tokenise` expects."""
    return identity_inputs(
        [
            {
                "last_name": r[0],
                "first_name": r[1],
                "birth_date": r[2],
                "birth_name": r[3] if len(r) > 3 else None,
                "source": source,
                "record_ref": f"D{i}",
                "household_ref": "G1",
            }
            for i, r in enumerate(rows)
        ]
    )


def test_same_value_same_token_and_another_key_another_token():
    row = ("Martin", "Jean", date(1980, 5, 4))
    a, b = tokenise(people(row), KEY), tokenise(people(row), KEY)
    other = tokenise(people(row), b"another-key-0123456789")
    assert a.equals(b)
    for column in TOKEN_COLUMNS:
        if a[column][0] is not None:
            assert a[column][0] != other[column][0], column


def test_tokens_are_hmac_sha256_under_the_key():
    """Keyed, not a plain hash: the token is HMAC-SHA256(key, namespace:value), cut to 32 hex."""
    long_key = b"k" * 100  # longer than SHA-256's block: HMAC hashes the key first
    for key in (KEY, long_key):
        t = tokenise(people(("Martin", "Jean", date(1980, 5, 4))), key)
        expected = hmac.new(key, b"name:MARTIN", hashlib.sha256).hexdigest()[:TOKEN_CHARS]
        assert t["tok_last"][0] == expected == keyed(key, "name", "MARTIN")
        dob = hmac.new(key, b"dob:1980-05-04", hashlib.sha256).hexdigest()[:TOKEN_CHARS]
        assert t["tok_dob"][0] == dob
    assert (
        tokenise(people(("Martin", "Jean", None)), KEY)["tok_last"][0]
        != hashlib.sha256(b"name:MARTIN").hexdigest()[:TOKEN_CHARS]
    )


def test_tokens_are_hex_and_carry_no_cleartext():
    t = tokenise(people(("Lefèvre", "Marie-Claire", date(1965, 5, 12), "Durand")), KEY)
    values = [v for v in t.row(0) if v is not None]
    assert len(values) == len(TOKEN_COLUMNS)  # a full identity fills every token
    for value in values:
        # lower-case hex only (typo forms: several tokens in one cell): no letter of a name, no
        # date separator, no upper-case record number can be left in clear
        assert HEX_TOKENS.match(value), value


@pytest.mark.parametrize("key", [b"", b"short", b"x" * 15])
def test_a_key_shorter_than_16_bytes_is_refused(key):
    with pytest.raises(ValueError, match="too short"):
        tokenise(people(("A", "B", None)), key)


def test_a_16_byte_key_is_enough():
    assert tokenise(people(("A", "B", None)), b"x" * 16).height == 1


def test_accent_case_hyphen_and_space_variants_share_tok_last():
    t = tokenise(
        people(
            ("Lefèvre", "Jean-Pierre", None),
            ("LEFEVRE", "JEAN PIERRE", None),
            ("  le-fèvre ", "jean-pierre", None),
            ("Le Fèvre", "Jean  Pierre", None),
            ("LEFÈVRE", "JEAN-PIERRE", None),
        ),
        KEY,
    )
    assert t["tok_last"].n_unique() == 1 and t["tok_first"].n_unique() == 1
    assert t["tok_first_first"][0] == keyed(KEY, "name", "JEAN")  # Jean-Pierre -> Jean


def test_particles_give_the_same_core_name():
    t = tokenise(
        people(
            ("DE LA FONTAINE", "Marie", None),
            ("Fontaine", "Marie", None),
            ("de la Fontaine", "Marie", None),
            ("EL IDRISSI", "Karim", None),
            ("Idrissi", "Karim", None),
        ),
        KEY,
    )
    core = t["tok_last_core"].to_list()
    assert core[0] == core[1] == core[2] and core[3] == core[4] and core[0] != core[3]
    assert t["tok_last"][0] != t["tok_last"][1]  # the full name still tells them apart


def test_swapped_first_and_last_names_share_tok_name_sorted():
    t = tokenise(people(("Diallo", "Aminata", None), ("AMINATA", "DIALLO", None)), KEY)
    assert t["tok_name_sorted"][0] == t["tok_name_sorted"][1]
    assert t["tok_name"][0] != t["tok_name"][1]
    assert t["tok_last"][0] == t["tok_first"][1]  # names share one namespace across columns


def test_birth_name_is_tokenised_like_a_last_name():
    t = tokenise(people(("Martin", "Sophie", None, "Durand"), ("Durand", "Sophie", None)), KEY)
    assert t["tok_birth_last"][0] == t["tok_last"][1]


def test_day_month_swap_meets_tok_dob_swapped():
    t = tokenise(
        people(
            ("A", "B", date(1985, 3, 7)),
            ("A", "B", date(1985, 7, 3)),
            ("A", "B", date(1985, 3, 25)),  # day > 12: no swapped form exists
            ("A", "B", date(1985, 4, 4)),  # day == month: swapping changes nothing
        ),
        KEY,
    )
    assert t["tok_dob_swapped"][0] == t["tok_dob"][1]
    assert t["tok_dob_swapped"][1] == t["tok_dob"][0]
    assert t["tok_dob_swapped"][2] is None and t["tok_dob_swapped"][3] is None
    assert t["tok_birth_md"][0] != t["tok_birth_md"][1]


def test_first_of_january_placeholder_keeps_only_the_year():
    t = tokenise(
        people(("A", "B", date(1985, 3, 7)), ("A", "B", date(1985, 1, 1)), ("A", "B", None)), KEY
    )
    assert t["tok_dob"][1] is None and t["tok_birth_md"][1] is None
    assert t["tok_dob_swapped"][1] is None
    assert t["tok_birth_year"][1] == t["tok_birth_year"][0] == keyed(KEY, "year", "1985")
    assert t["tok_birth_year"][2] is None and t["tok_dob"][2] is None


def test_birth_date_and_record_number_never_share_a_token():
    """Namespaces keep kinds apart: a record number that looks like a date is not that date."""
    t = tokenise(people(("A", "B", date(1985, 3, 7))), KEY)
    assert keyed(KEY, "dob", "1985-03-07") == t["tok_dob"][0]
    assert keyed(KEY, "record", "1985-03-07") != t["tok_dob"][0]
    assert t["record_token"][0] == keyed(KEY, "record", "sne:D0")  # the source is part of it


def test_names_one_typo_apart_share_a_typo_form():
    t = tokenise(
        people(
            ("MARTIN", "Jean", None),
            ("MARTN", "Jaen", None),  # deletion; transposition
            ("MARITN", "Jean", None),  # transposition
            ("MARTINN", "Jean", None),  # insertion
            ("DURAND", "Paul", None),
        ),
        KEY,
    )
    forms = [set(v.split(" ")) for v in t["tok_last_typo"]]
    assert forms[0] & forms[1] and forms[0] & forms[2] and forms[0] & forms[3]
    assert not forms[0] & forms[4]
    first = [set(v.split(" ")) for v in t["tok_first_typo"]]
    assert first[0] & first[1]


def test_names_two_typos_apart_share_a_form_and_short_names_have_none():
    t = tokenise(
        people(
            ("DIALLO", "Fatoumata", None),
            ("DIALLO", "Fetoumato", None),  # two letters mistyped
            ("DIALLO", "Fetoumat", None),  # one mistyped, one left out
            ("DIALLO", "Fanta", None),  # five letters: no form two letters short
            ("DIALLO", "Aminata", None),
        ),
        KEY,
    )

    def forms(i: int) -> set[str]:
        return set((t["tok_first_typo2"][i] or "").split()) | set(t["tok_first_typo"][i].split())

    for two_typos in (1, 2):  # beyond the forms one letter short
        assert not set(t["tok_first_typo"][0].split()) & set(t["tok_first_typo"][two_typos].split())
    assert set(t["tok_first_typo2"][0].split()) & forms(1)
    assert set(t["tok_first_typo2"][0].split()) & forms(2)
    assert t["tok_first_typo2"][3] is None
    assert not set(t["tok_first_typo2"][0].split()) & forms(4)


# ----------------------------------------------------------------- phonetic code
def phonetic(*names: str | None) -> list[str | None]:
    frame = pl.DataFrame({"n": list(names)}, schema={"n": pl.String})
    return frame.select(nm.phonetic(pl.col("n")))["n"].to_list()


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("LEFEBVRE", "LEFEVRE"),
        ("MOHAMED", "MOHAMMED"),
        ("KEVIN", "QUEVIN"),
        ("PHILIPPE", "FILIPE"),
        ("GAUTHIER", "GAUTIER"),
        ("CATHERINE", "KATHERINE"),
        ("DUPONT", "DUPOND"),
        ("ROUSSEAU", "ROUSSO"),
        ("THOMAS", "TOMAS"),
        ("SCHMITT", "CHMIT"),
        ("BERNARD", "BERNART"),
        ("GERARD", "JERARD"),
        ("YANNICK", "IANNIK"),
        ("LAURENT", "LORENT"),
        ("GUILLAUME", "GILLAUME"),
        ("SYLVIE", "SILVIE"),
        ("VINCENT", "VINSENT"),
        ("HUGO", "UGO"),
        ("MICHEL", "MICHELLE"),
        ("LEROY", "LEROI"),
    ],
)
def test_phonetic_code_joins_french_spellings(a, b):
    code_a, code_b = phonetic(a, b)
    assert code_a == code_b


def test_phonetic_code_keeps_different_names_apart():
    names = ["MARTIN", "MARCHAND", "DIALLO", "DIARRA", "PETIT", "PETITJEAN", "BERNARD", "BENARD"]
    assert len(set(phonetic(*names))) == len(names)


def test_phonetic_code_never_empties_a_name():
    assert phonetic("H", "EH", "ES") == ["H", "EH", "ES"]  # nothing heard: the name itself


# codes of the Polars version these replaced (tokens stay those already stored): a triple
# letter is halved once (AMMMAR -> AMMAR), rewrites apply in order, silent endings go
PHONETIC_CODES = {
    "MOHAMMED": "MOAN",
    "AAAB": "AB",
    "SCHWARTZENEGGER": "XVARTSANEJ",
    "GUILLAUME": "JILOM",
    "BEAUREGARD": "BOREGAR",
    "QUESNEL": "KESNEL",
    "CYRIL": "SIRIL",
    "ZOE": "SO",
    "HERBERT": "ERBER",
    "DUPREZ": "DUPR",
    "TTT": "TTT",
    "NGUYEN": "NGUIAN",
    "AMMMAR": "ANMAR",
}


def test_phonetic_codes_are_those_already_stored():
    assert phonetic(*PHONETIC_CODES, None) == [*PHONETIC_CODES.values(), None]


def test_phonetic_tokens_meet_across_spellings():
    t = tokenise(people(("Lefebvre", "Kévin", None), ("LEFEVRE", "Quevin", None)), KEY)
    assert t["tok_phon_last"].n_unique() == 1 and t["tok_phon_first"].n_unique() == 1
    assert t["tok_last"].n_unique() == 2


@pytest.mark.parametrize(
    "typed, expected",
    [
        ("Łukasz Wałęsa", "LUKASZ WALESA"),
        ("Bjørn Ødegård", "BJORN ODEGARD"),
        ("Đorđević", "DORDEVIC"),
        ("Weiß", "WEISS"),
        ("Lætitia Œillet", "LAETITIA OEILLET"),
        ("NGUYỄN", "NGUYEN"),
        ("Çelik", "CELIK"),
        ("Dupont N°2", "DUPONT N"),
        ("😀 Marie", "MARIE"),
    ],
)
def test_letters_unicode_does_not_decompose_are_transliterated(typed, expected):
    cleaned = pl.DataFrame({"n": [typed]}).select(nm.clean(pl.col("n")))["n"][0]
    assert cleaned == expected


def test_a_transliterated_name_meets_its_ascii_spelling():
    t = tokenise(people(("Wałęsa", "Łukasz", None), ("WALESA", "LUKASZ", None)), KEY)
    assert t["tok_last"].n_unique() == 1 and t["tok_first"].n_unique() == 1


def _near(*born: date) -> list[set[str]]:
    t = tokenise(people(*((f"N{i}", "A", b) for i, b in enumerate(born))), KEY)
    return [set(v.split()) if v else set() for v in t["tok_dob_near"]]


def test_full_dates_one_field_apart_share_one_near_token_and_others_none():
    same_month, another_day, other = _near(date(1985, 3, 2), date(1985, 3, 21), date(1986, 4, 2))
    assert len(same_month & another_day) == 1  # year and month
    assert not same_month & other  # year and month differ: only the day agrees
    assert len(_near(date(1985, 3, 2), date(1986, 3, 2))[0] & _near(date(1986, 3, 2))[0]) == 1


# ----------------------------------------------------------------- the fast path, pinned
NAMESPACES = {  # the token columns keyed value by value, and their namespaces
    "record_token": "record",
    "household_token": "household",
    "tok_last": "name",
    "tok_last_core": "name",
    "tok_birth_last": "name",
    "tok_first": "name",
    "tok_first_first": "name",
    "tok_phon_last": "phon",
    "tok_phon_first": "phon",
    "tok_name": "pair",
    "tok_name_sorted": "pair",
    "tok_dob": "dob",
    "tok_dob_swapped": "dob",
    "tok_birth_year": "year",
    "tok_birth_md": "md",
}
TRICKY = [
    ("Łukasz", "Wałęsa", date(1980, 5, 4), None),
    ("Bjørn-Ødegård", "Đorđe", date(1980, 4, 5), "Weiß"),
    ("de la Fontaine", "Marie-Claire", date(1990, 1, 1), "EL IDRISSI"),
    ("DE LA FONTAINE", "marie claire", date(1990, 3, 3), None),
    ("", "Jean", None, ""),
    (None, "Jean", None, None),
    ("Martin", None, date(2001, 12, 31), None),
    ("MARTINE", "Martin", date(1975, 7, 12), None),  # typo forms shared with MARTIN
    ("Martin", "Jean", date(1980, 5, 4), None),
    ("Martin", "Jean", date(1980, 5, 4), None),  # the same row twice
    ("   ", "  -  ", None, None),
    ("O'Brien", "Jean-Pierre Marie", date(1960, 2, 29), "Ben Salah"),
    ("X", "Y", date(1985, 3, 2), None),  # one letter: its only typo form is empty
    ("Nguyễn Văn", "Thị Minh", date(1999, 9, 9), None),
    (None, None, None, None),
    ("Abcdefghij" * 4, "Jean", None, None),  # 40 letters: the longest with forms two short
    ("Abcdefghij" * 4 + "K", "Jean", None, None),  # 41: none
]


def reference_tokens(frame: pl.DataFrame, key: bytes) -> pl.DataFrame:
    """The tokens of every row keyed one value at a time with `keyed`, from the cleartext
    keys: what `tokenise` must equal byte for byte."""

    def forms(value: str | None, namespace: str, spell) -> str | None:
        if value is None:
            return None
        return " ".join(sorted({keyed(key, namespace, f) for f in spell(value)}))

    def typos(name: str) -> list[str]:
        return [name, *(name[:i] + name[i + 1 :] for i in range(len(name)))]

    def typos2(name: str) -> list[str]:
        if not 6 <= len(name) <= 40:
            return []
        return [
            name[:i] + name[i + 1 : j] + name[j + 1 :] for i, j in combinations(range(len(name)), 2)
        ]

    def near(iso: str) -> list[str]:
        year, month, day = iso.split("-")
        return [f"ym:{year}-{month}", f"yd:{year}-{day}", f"md:{month}-{day}"]

    rows = []
    for clear in identity_keys(frame).iter_rows(named=True):
        row = {
            c: None if clear[c] is None else keyed(key, ns, clear[c])
            for c, ns in NAMESPACES.items()
        }
        row["tok_last_typo"] = forms(clear["tok_last"], "typo", typos)
        row["tok_first_typo"] = forms(clear["tok_first"], "typo", typos)
        for column in ("tok_last", "tok_first"):
            two = clear[column] and typos2(clear[column])
            row[f"{column}_typo2"] = forms(clear[column] if two else None, "typo", typos2)
        row["tok_dob_near"] = forms(clear["tok_dob"], "dobnear", near)
        rows.append(row)
    return pl.DataFrame(rows, schema=dict.fromkeys(TOKEN_COLUMNS, pl.String))


@pytest.mark.parametrize("key", [KEY, KEY + b"\n" + b"rotated-key-0123456789abcdef"])
def test_tokenise_equals_keying_each_value_alone_on_tricky_names(key):
    """Tokens are hashed once per distinct value and form and joined back to the rows: the
    result must be byte-identical to keying each row's values one by one (and to tokenising
    each row alone), under one key and under a rotated chain."""
    frame = people(*TRICKY)
    batch = tokenise(frame, key)
    assert batch.equals(reference_tokens(frame, key))
    alone = pl.concat([tokenise(frame.slice(i, 1), key) for i in range(frame.height)])
    assert batch.equals(alone)
    assert batch["tok_last"][4] is None and batch["tok_first"][10] is None  # nothing to key


VARIED = [
    "MARTIN",
    "",  # a one-letter name's typo form
    "é",
    "Łukasz Wałęsa",
    "Nguyễn Văn Thị Minh",
    "名前",
    "😀",
    "line\nbreak\ttab\x00nul",
    "\\xAA",  # read as bytes, not as an escape sequence
    "A" * 50,  # prefix and value fill one block but its padding
    "B" * 55,
    "C" * 56,  # the message runs over into a second block
    "D" * 64,
    "É" * 300,  # several blocks, multibyte
    "sne:REF-000123",
    None,
]


@pytest.mark.parametrize(
    "key",
    [
        KEY,
        b"k" * 64,  # a block exactly: used as it is
        b"k" * 65,  # longer than a block: hashed first
        KEY + b"\n" + b"rotated-key-0123456789abcdef",
        KEY + b"\n" + b"r" * 100 + b"\n" + b"third-key-0123456789abcd",
    ],
)
def test_keyed_tokens_of_a_column_equal_keyed_one_value_at_a_time(key):
    """The HMAC that tokenises a month's columns is computed natively, a column at a time: it
    must give exactly `keyed`'s tokens, for any text, any length, any key and chain of keys."""
    values = pl.Series(VARIED + VARIED[::-1], dtype=pl.String)
    keyed_ = _Keyed(key)
    for namespace in ("name", "typo"):
        table = keyed_.tokens(namespace, values)
        assert table.height == len(VARIED) - 1  # each value once, no null
        assert dict(table.iter_rows()) == {
            v: keyed(key, namespace, v) for v in VARIED if v is not None
        }
    assert keyed_.tokens("name", pl.Series([], dtype=pl.String)).height == 0


def test_a_key_that_is_not_text_is_refused_without_being_quoted():
    key = b"\xff\xfe-not-utf8-0123456789abcdef"
    with pytest.raises(ValueError, match="not UTF-8 text") as refused:
        tokenise(people(("A", "B", None)), key)
    assert "0123456789" not in str(refused.value) and "xff" not in str(refused.value)


def test_keyed_tokens_of_a_column_hashed_in_parallel_chunks_equal_keyed():
    """Past a few thousand values the HMAC runs over one chunk per thread: every value still gets
    its own token, the one `keyed` gives, whichever chunk holds it."""
    rng = random.Random(7)
    letters = "ABCDEFGHIJKLMNOPQRSTUVWXYZÉÈÇ -'"
    values = list({"".join(rng.choices(letters, k=rng.randint(1, 20))) for _ in range(12_000)})
    key = KEY + b"\n" + b"rotated-key-0123456789abcdef"
    table = _Keyed(key).tokens("typo", pl.Series(values + values[:500] + [None]))
    assert table.height == len(values) > 2 * 4096
    assert dict(table.iter_rows()) == {v: keyed(key, "typo", v) for v in values}
