"""Identity: keyed tokens, probabilistic linkage of records into persons."""

from __future__ import annotations

import polars as pl

from synchro_dagster.identity.linkage import cluster, estimate
from synchro_dagster.identity.tokens import tokenise

__all__ = ["resolve_persons"]


def resolve_persons(records: pl.DataFrame, key: bytes) -> pl.DataFrame:
    """Which records are the same person, by exactly the production path.

    Input: `record_id`, `first_name`, `last_name`, `birth_date` (pl.Date or null), optional
    `sex` ("M"/"F"). Names are normalised and turned into keyed tokens under `key`; the model's
    parameters are re-estimated without labels on these records, starting from the shipped
    `model.json` (kept as it is when the records are too few or the estimate fails
    `model_problems`); pairs are scored and clustered. Output: `record_id`, `person_id` (the
    smallest record_id of the person's records). Nothing leaves in clear.
    """
    n = records.height
    inputs = records.select(
        pl.col("last_name").cast(pl.String),
        pl.col("first_name").cast(pl.String),
        pl.lit(None, pl.String).alias("birth_name"),
        pl.col("birth_date").cast(pl.Date),
        ((pl.col("birth_date").dt.day() == 1) & (pl.col("birth_date").dt.month() == 1))
        .fill_null(False)
        .alias("birth_year_only"),
        pl.lit("evaluation").alias("source"),
        pl.lit(None, pl.String).alias("record_ref"),
        pl.lit(None, pl.String).alias("household_ref"),
    )
    sex = records["sex"] if "sex" in records.columns else pl.Series([None] * n, dtype=pl.String)
    linkable = pl.concat([records.select("record_id"), tokenise(inputs, key)], how="horizontal")
    linkable = linkable.with_columns(
        sex.cast(pl.String).alias("sex"), pl.lit(None, pl.String).alias("age_band")
    )
    estimated = estimate(linkable)
    model = estimated.model if estimated is not None and estimated.accepted else None
    return cluster(linkable, model).rename({"cluster_id": "person_id"})
