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

import polars as pl

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
)


def keyed(key: bytes, namespace: str, value: str) -> str:
    digest = hmac.new(key, f"{namespace}:{value}".encode(), hashlib.sha256).hexdigest()
    return digest[:TOKEN_CHARS]


def _tokenise_column(values: pl.Series, key: bytes, namespace: str) -> pl.Series:
    """HMAC of each distinct value once (names repeat: far fewer distinct values than rows)."""
    distinct = values.drop_nulls().unique()
    table = pl.DataFrame(
        {
            "v": distinct,
            "t": [keyed(key, namespace, v) for v in distinct.to_list()],
        },
        schema={"v": pl.String, "t": pl.String},
    )
    return (
        values.to_frame("v")
        .join(table, on="v", how="left", maintain_order="left")
        .get_column("t")
        .alias(values.name)
    )


def identity_keys(df: pl.DataFrame) -> pl.DataFrame:
    """Cleartext match keys (in memory only) from canonical identity columns.

    Input: last_name, first_name, birth_name, birth_date (Date), birth_year_only (bool),
    source, record_ref, household_ref.
    """
    last = nm.clean(pl.col("last_name"))
    first = nm.clean(pl.col("first_name"))
    birth = nm.clean(pl.col("birth_name"))
    dob = pl.col("birth_date")
    full = dob.is_not_null() & ~pl.col("birth_year_only")
    swappable = full & (dob.dt.day() <= 12) & (dob.dt.day() != dob.dt.month())
    return df.select(
        pl.concat_str(pl.col("source"), pl.col("record_ref"), separator=":").alias("record_token"),
        pl.concat_str(pl.col("source"), pl.col("household_ref"), separator=":").alias(
            "household_token"
        ),
        nm.compact(last).alias("tok_last"),
        nm.without_particles(last).alias("tok_last_core"),
        nm.compact(birth).alias("tok_birth_last"),
        nm.compact(first).alias("tok_first"),
        nm.first_part(first).alias("tok_first_first"),
        nm.phonetic(nm.compact(last)).alias("tok_phon_last"),
        nm.phonetic(nm.first_part(first)).alias("tok_phon_first"),
        pl.concat_str(nm.compact(last), nm.compact(first), separator="|").alias("tok_name"),
        pl.concat_str(
            pl.min_horizontal(nm.compact(last), nm.compact(first)),
            pl.max_horizontal(nm.compact(last), nm.compact(first)),
            separator="|",
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
    return pl.DataFrame([_tokenise_column(keys[c], key, _NAMESPACE[c]) for c in TOKEN_COLUMNS])
