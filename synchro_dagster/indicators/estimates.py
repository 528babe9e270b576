"""The month's estimates: hidden households (marts.hidden_population) and the ranges
(marts.estimates) of the headline figures, with the check that says when not to trust them.

Linkage range. Identity records, every month, the decisions it was unsure of
(identity.churn): records that fitted several persons equally, records likely one of several
namesakes, households merged. Taken the other way, each moves at most one household in or out
of a figure: ± each. Identity's commonest error is one it cannot flag: a record it could not
link, most often undated, starting a person (and a household) of its own. So the persons
first seen in the period none of whose records carries a birth date may each be a fragment of
a household already counted: the figure may be that many lower. The stock of month M rests on
the records of its inactivity window, so its range counts the window's months; a flow compares
two months whose earlier decisions are common to both, so its range counts month M's. The
estimated total is widened by month M's (its count part). Re-clustering at other thresholds
would be finer but needs identity re-run for every month at each threshold: too slow for a
monthly run (docs/estimation.md).
"""

from __future__ import annotations

from datetime import date

import duckdb
import polars as pl

from synchro_dagster import warehouse
from synchro_dagster.checks import CheckOutcome
from synchro_dagster.identity.persons import RECORD_KEY
from synchro_dagster.indicators.hidden import (
    DISAGREEMENT_FACTOR,
    MIN_LIST,
    MIN_STRATUM,
    STRATA,
    StratumEstimate,
    estimate_month,
    total,
)
from synchro_dagster.observation.build import Window

# (entity, kind) rows of identity.churn that are a doubtful decision
DOUBTS = (("record", "ambiguous"), ("record", "one_of_several"), ("household", "merged"))
HEADLINE = ("stock_households", "inflow_households", "outflow_households")


def captures(conn: duckdb.DuckDBPyConnection, month: date) -> list[tuple[str | None, list[str]]]:
    """(situation, sources of the month) of each household seen this month and without a home
    at its end: the capture histories."""
    return conn.execute(
        "SELECT situation, sources FROM core.household_months "
        "WHERE month = ? AND status = 'active' AND len(sources) > 0 ORDER BY household_id",
        [month],
    ).fetchall()


def linkage_doubts(conn: duckdb.DuckDBPyConnection, first: date, last: date) -> int:
    """Doubtful identity decisions of the months from `first` to `last`."""
    (n,) = conn.execute(
        "SELECT coalesce(sum(n), 0) FROM identity.churn WHERE month BETWEEN ? AND ? "
        "AND list_contains(?, entity || ':' || kind)",
        [first, last, [f"{e}:{k}" for e, k in DOUBTS]],
    ).fetchone()
    return int(n)


def undated_newcomers(conn: duckdb.DuckDBPyConnection, first: date, last: date) -> int:
    """Persons first linked in the months from `first` to `last` none of whose records (up to
    `last`) carries a birth date: possible fragments of persons already known."""
    union, params = warehouse.staged_history(
        conn, f"{RECORD_KEY} AS record_key, month, tok_dob", last
    )
    (n,) = conn.execute(
        f"WITH s AS ({union}), "
        "linked AS (SELECT l.person_id, l.month, s.tok_dob FROM identity.person_links AS l "
        "JOIN s USING (record_key, month) WHERE l.month <= ?) "
        "SELECT count(*) FROM (SELECT person_id FROM linked GROUP BY person_id "
        "HAVING min(month) BETWEEN ? AND ? AND count(tok_dob) = 0)",
        [*params, last, first, last],
    ).fetchone()
    return int(n)


def estimates_month(
    conn: duckdb.DuckDBPyConnection, month: date, inactivity_days: int = 90
) -> tuple[list[StratumEstimate], dict[str, int]]:
    """Replaces the month in marts.hidden_population and marts.estimates; the strata's
    estimates and the rows written per table."""
    strata = estimate_month(captures(conn, month))
    window_first = Window(month, inactivity_days).params()["window_first_month"]
    doubts_month = linkage_doubts(conn, month, month)
    doubts_window = linkage_doubts(conn, window_first, month)
    undated_month = undated_newcomers(conn, month, month)
    undated_window = undated_newcomers(conn, window_first, month)
    hidden = pl.DataFrame(
        [
            {
                "month": month,
                "stratum": s.stratum,
                "lists": s.lists,
                "households_seen": s.seen,
                "estimated_unseen": s.unseen,
                "unseen_lower": s.lower,
                "unseen_upper": s.upper,
                "models": s.models_json(),
                "warnings": s.warnings,
            }
            for s in strata
        ],
        schema={
            "month": pl.Date,
            "stratum": pl.String,
            "lists": pl.List(pl.String),
            "households_seen": pl.Int32,
            "estimated_unseen": pl.Float64,
            "unseen_lower": pl.Float64,
            "unseen_upper": pl.Float64,
            "models": pl.String,
            "warnings": pl.List(pl.String),
        },
    )
    counts = dict(
        conn.execute(
            "SELECT indicator, value FROM marts.indicators WHERE month = ? AND dimension IS NULL "
            "AND list_contains(?, indicator)",
            [month, list(HEADLINE)],
        ).fetchall()
    )
    rows = []
    for name in HEADLINE:
        value = counts.get(name, 0.0)
        stock = name == "stock_households"
        doubt, undated = (doubts_window, undated_window) if stock else (doubts_month, undated_month)
        rows.append(
            (name, "linkage_range", value, max(0.0, value - doubt - undated), value + doubt)
        )
    unseen = total(strata)
    if unseen is not None:
        seen = sum(s.seen for s in strata)
        est, low, high = unseen
        rows += [
            (
                "estimated_households_total",
                "estimation",
                seen + est,
                max(0.0, seen - doubts_month - undated_month) + low,
                seen + doubts_month + high,
            ),
            ("estimated_households_unseen", "estimation", est, low, high),
        ]
    estimates = pl.DataFrame(
        rows,
        schema={
            "indicator": pl.String,
            "kind": pl.String,
            "value": pl.Float64,
            "lower": pl.Float64,
            "upper": pl.Float64,
        },
        orient="row",
    ).select(pl.lit(month).alias("month"), pl.all())
    written = warehouse.replace_month(
        conn, month, {"marts.hidden_population": hidden, "marts.estimates": estimates}
    )
    return strata, written


def stability(strata: list[StratumEstimate]) -> CheckOutcome:
    """WARN when an estimate of the month is not to be trusted: models disagreeing by more than
    DISAGREEMENT_FACTOR, a list or stratum too small, a zero cell driving it, a model putting no
    household out of sight, no estimate."""
    problems = sorted(
        {f"{s.stratum}: {w}" for s in strata for w in s.warnings}
        | {f"{s.stratum}: no estimate" for s in strata if s.unseen is None}
    )
    return CheckOutcome(
        "estimate_stable",
        not problems and bool(strata),
        {
            "problems": "; ".join(problems) or ("no household seen" if not strata else "none"),
            "strata": len(strata),
            "disagreement_factor": DISAGREEMENT_FACTOR,
            "min_list": MIN_LIST,
            "min_stratum": MIN_STRATUM,
            "strata_defined": ", ".join(STRATA),
        },
        severity="WARN",
    )
