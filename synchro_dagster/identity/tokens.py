"""Keyed pseudonymisation: every identifier becomes an HMAC-SHA256 token under the project key.

A token cannot be reversed without the key, and the same value always gives
the same token, so records can be linked on tokens alone. Namespaces keep
kinds apart where a coincidence would mislead (a birth date and a partner
number never share a token) but let names be compared across positions
(a first name typed in the last-name column still meets itself).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable

import polars as pl
import polars_hash as plh

from synchro_dagster.identity import normalise as nm

TOKEN_CHARS = 32  # 128 bits of the HMAC: collisions are out of reach for any territory

TOKEN_COLUMNS = (
    "record_token",
    "household_token",
    "tok_last",
    "tok_last_core",
    "tok_birth_last",
    "tok_first",
    "tok_first_first",
    "tok_phon_last",
    "tok_phon_first",
    "tok_name",
    "tok_name_sorted",
    "tok_dob",
    "tok_dob_swapped",
    "tok_birth_year",
    "tok_birth_md",
    "tok_last_typo",  # keyed forms of the name one typo away, space-separated
    "tok_first_typo",
    "tok_last_typo2",  # keyed forms of the name two letters short (`nm.two_typos_away`)
    "tok_first_typo2",
    "tok_dob_near",  # keyed forms of the full birth date with one field left out
)


INPUT_SCHEMA = {  # what `tokenise` reads: canonical identity, in clear, in memory only
    "last_name": pl.String,
    "first_name": pl.String,
    "birth_name": pl.String,
    "birth_date": pl.Date,
    "birth_year_only": pl.Boolean,
    "source": pl.String,
    "record_ref": pl.String,
    "household_ref": pl.String,
}


def identity_inputs(rows: list[dict]) -> pl.DataFrame:
    """Rows naming some of the input columns (the others null) -> the frame `tokenise` reads.

    Unless a row says otherwise, a 01/01 birth date counts as the year only."""
    filled = []
    for row in rows:
        born = row.get("birth_date")
        defaults: dict = dict.fromkeys(INPUT_SCHEMA)
        defaults["birth_year_only"] = born is not None and (born.day, born.month) == (1, 1)
        filled.append(defaults | row)
    return pl.DataFrame(filled, schema=INPUT_SCHEMA)


KEY_SEPARATOR = b"\n"  # a key rotated n times is a chain of n + 1 keys, oldest first
REKEY = "rekey:"  # what a later key of the chain hashes: the token under the keys before it


def key_chain(key: bytes) -> list[bytes]:
    """The keys of a (possibly rotated) pseudonymisation key, oldest first."""
    return key.split(KEY_SEPARATOR)


def keyed(key: bytes, namespace: str, value: str, chars: int = TOKEN_CHARS) -> str:
    """HMAC-SHA256 of `namespace:value` under the first key of the chain, truncated to `chars`;
    each later key hashes the token before it (`rekey:<token>`), so that a rotation turns the
    tokens held into the tokens ingestion now makes, without the values in clear."""
    first, *later = key_chain(key)
    token = hmac.new(first, f"{namespace}:{value}".encode(), hashlib.sha256).hexdigest()[:chars]
    for k in later:
        token = rekeyed(k, token, chars)
    return token


def rekeyed(key: bytes, token: str, chars: int = TOKEN_CHARS) -> str:
    """A token made under the keys before `key`, carried under `key` (one key, not a chain)."""
    return hmac.new(key, f"{REKEY}{token}".encode(), hashlib.sha256).hexdigest()[:chars]


class _Keyed:
    """HMAC-SHA256 under each key of the chain, equal to `keyed`, for the hundreds of thousands
    of values of a month: polars-hash computes it in Rust over the column of distinct values
    (with the processor's SHA instructions), some four times faster than hashlib one value at
    a time. It takes each key as text, which every key from the settings is."""

    def __init__(self, key: bytes):
        try:
            self._chain = [k.decode("utf-8") for k in key_chain(key)]
        except UnicodeDecodeError:
            raise ValueError("the pseudonymisation key is not UTF-8 text") from None

    def tokens(self, namespace: str, values: pl.Series) -> pl.DataFrame:
        """Each distinct value given (nulls aside) and its token: columns `v`, `t` (a table that
        lives only in the ingestion step's memory, as long as the caller keeps it)."""
        token = plh.concat_str(pl.lit(f"{namespace}:"), pl.col("v"))
        for i, k in enumerate(self._chain):
            if i:
                token = plh.concat_str(pl.lit(REKEY), token)
            token = token.chash.hmac_sha256(key=k).str.slice(0, TOKEN_CHARS)
        distinct = values.drop_nulls().unique().to_frame("v")
        return _in_chunks(distinct).with_columns(token.alias("t"))


def _in_chunks(frame: pl.DataFrame) -> pl.DataFrame:
    """`frame` cut into one chunk per Polars thread: a plugin's expression (the HMAC) runs on
    each chunk in parallel, where one chunk holds it to one core."""
    size = -(-frame.height // pl.thread_pool_size())
    if frame.height < 2 * 4096:  # below this, starting the threads costs what they save
        return frame
    return pl.concat([frame.slice(i, size) for i in range(0, frame.height, size)], rechunk=False)


def _tokenise_namespace(
    keys: pl.DataFrame, columns: list[str], keyed_: _Keyed, namespace: str
) -> list[pl.Series]:
    """HMAC of each distinct value once across the columns sharing a namespace."""
    table = keyed_.tokens(namespace, pl.concat([keys[c] for c in columns]))
    return [
        keys[c]
        .to_frame("v")
        .join(table, on="v", how="left", maintain_order="left")
        .get_column("t")
        .alias(c)
        for c in columns
    ]


def _form_tokens(
    keys: pl.DataFrame,
    columns: dict[str, str],
    keyed_: _Keyed,
    namespace: str,
    forms: Callable[[pl.DataFrame], pl.DataFrame],
) -> list[pl.Series]:
    """Each distinct value of the key columns (`columns`: token column -> key column) -> its
    `forms` (`v` -> each form `f`), keyed, sorted, space-joined: two values share a token when
    one accident (a typo, one date field) separates them. A form of several values (MARTIN and
    MARTINE both give MARTIN; a last name typed as a first name) is hashed once."""
    distinct = pl.concat([keys[c] for c in columns.values()]).drop_nulls().unique().to_frame("v")
    pairs = forms(distinct)
    tokens = keyed_.tokens(namespace, pairs["f"]).rename({"v": "f"})
    table = pairs.join(tokens, on="f").group_by("v").agg(pl.col("t").unique().sort().str.join(" "))
    return [
        keys[key]
        .to_frame("v")
        .join(table, on="v", how="left", maintain_order="left")
        .get_column("t")
        .alias(column)
        for column, key in columns.items()
    ]


def _date_fields_but_one(dates: pl.DataFrame) -> pl.DataFrame:
    """ "1985-03-02" -> its year and month, year and day, month and day (`v` -> `f`)."""
    year, month, day = (pl.col("v").str.split("-").list.get(i) for i in range(3))
    return dates.select(
        "v",
        pl.concat_list(
            pl.concat_str(pl.lit("ym:"), year, pl.lit("-"), month),
            pl.concat_str(pl.lit("yd:"), year, pl.lit("-"), day),
            pl.concat_str(pl.lit("md:"), month, pl.lit("-"), day),
        ).alias("f"),
    ).explode("f")


_FORMS = {  # which normalised forms each name column needs
    "last_name": {
        "compact": nm.compact,
        "core": nm.without_particles,
        "phon": lambda c: nm.phonetic(nm.compact(c)),
    },
    "first_name": {
        "compact": nm.compact,
        "first": nm.first_part,
        "phon_first": lambda c: nm.phonetic(nm.first_part(c)),
    },
    "birth_name": {"compact": nm.compact},
}


def _spellings(values: pl.Series, column: str) -> pl.DataFrame:
    """Each distinct raw spelling once -> its normalised forms (`<column>_<form>`)."""
    distinct = values.cast(pl.String).drop_nulls().unique().to_frame(column)
    cleaned = nm.clean(pl.col(column))
    forms = distinct.with_columns(
        form(cleaned).alias(f"{column}_{name}") for name, form in _FORMS[column].items()
    )
    return forms


def identity_keys(df: pl.DataFrame) -> pl.DataFrame:
    """Cleartext match keys (in memory only) from canonical identity columns.

    Input: last_name, first_name, birth_name, birth_date (Date), birth_year_only (bool),
    source, record_ref, household_ref.
    """
    names = df.select("last_name", "first_name", "birth_name")
    for column in names.columns:
        names = names.join(
            _spellings(df[column], column), on=column, how="left", maintain_order="left"
        )
    last, first = pl.col("last_name_compact"), pl.col("first_name_compact")
    dob = pl.col("birth_date")
    full = dob.is_not_null() & ~pl.col("birth_year_only")
    swappable = full & (dob.dt.day() <= 12) & (dob.dt.day() != dob.dt.month())
    return pl.concat(
        [df, names.drop("last_name", "first_name", "birth_name")], how="horizontal"
    ).select(
        pl.concat_str(pl.col("source"), pl.col("record_ref"), separator=":").alias("record_token"),
        pl.concat_str(pl.col("source"), pl.col("household_ref"), separator=":").alias(
            "household_token"
        ),
        last.alias("tok_last"),
        pl.col("last_name_core").alias("tok_last_core"),
        pl.col("birth_name_compact").alias("tok_birth_last"),
        first.alias("tok_first"),
        pl.col("first_name_first").alias("tok_first_first"),
        pl.col("last_name_phon").alias("tok_phon_last"),
        pl.col("first_name_phon_first").alias("tok_phon_first"),
        pl.concat_str(last, first, separator="|").alias("tok_name"),
        pl.concat_str(
            pl.min_horizontal(last, first), pl.max_horizontal(last, first), separator="|"
        ).alias("tok_name_sorted"),
        pl.when(full).then(dob.dt.strftime("%Y-%m-%d")).alias("tok_dob"),
        pl.when(swappable).then(dob.dt.strftime("%Y-%d-%m")).alias("tok_dob_swapped"),
        dob.dt.year().cast(pl.String).alias("tok_birth_year"),
        pl.when(full).then(dob.dt.strftime("%m-%d")).alias("tok_birth_md"),
    )


# names share one namespace so that a swapped first/last name still meets itself
_NAMESPACE = {
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


def tokenise(df: pl.DataFrame, key: bytes) -> pl.DataFrame:
    """The keyed tokens of every row of `df` (see `identity_keys` for the input columns)."""
    if len(key) < 16:
        raise ValueError("the pseudonymisation key is too short (at least 16 bytes)")
    keys = identity_keys(df)
    keyed_ = _Keyed(key)
    by_namespace: dict[str, list[str]] = {}
    for column in _NAMESPACE:
        by_namespace.setdefault(_NAMESPACE[column], []).append(column)
    series = {
        s.name: s
        for namespace, columns in by_namespace.items()
        for s in _tokenise_namespace(keys, columns, keyed_, namespace)
    }
    typos = {"tok_last_typo": "tok_last", "tok_first_typo": "tok_first"}
    typos2 = {"tok_last_typo2": "tok_last", "tok_first_typo2": "tok_first"}
    for s in [  # both typo forms in one namespace: a name two typos from another shares a form
        *_form_tokens(keys, typos, keyed_, "typo", nm.one_typo_away),
        *_form_tokens(keys, typos2, keyed_, "typo", nm.two_typos_away),
        *_form_tokens(keys, {"tok_dob_near": "tok_dob"}, keyed_, "dobnear", _date_fields_but_one),
    ]:
        series[s.name] = s
    return pl.DataFrame([series[c] for c in TOKEN_COLUMNS])
