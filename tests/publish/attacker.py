"""An attacker holding the public csv and what the README says about the figures ("Public
figures": which indicators add up, the stock balance, ETHOS categories, persons >= households,
the nesting of returns, the priority and coverage bounds). Written apart from
synchro_dagster.publish.disclosure on purpose: it shares no code with what it attacks.

For every suppressed count cell, it solves min and max of the cell under every constraint with
HiGHS (scipy.optimize.linprog) and reports the integer interval it is left with.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import polars as pl
from scipy.optimize import linprog

ADDS_UP = ("stock_households", "stock_persons", "inflow_households", "outflow_households")
DURATIONS = (
    "median_months_since_first_seen",
    "mean_months_to_housing",
    "median_months_to_housing",
    "median_months_waiting_priority",
)
ETHOS_OF = {
    "RUE": "1",
    "MISE_ABRI": "2",
    "HOTEL": "2",
    "HEB_INSERTION": "3",
    "LOG_TEMP": "3",
    "ASILE": "3 (asile)",
    "INSTITUTION": "4",
    "SQUAT": "5",
    "TIERS": "6",
}


def read_published(path: Path) -> pl.DataFrame:
    return pl.read_csv(path, separator=";", schema_overrides={"modalite": pl.String})


class Attack:
    """Unknowns are the suppressed counts; published cells are constants; absent cells are 0."""

    def __init__(self, published: pl.DataFrame) -> None:
        rows = published.filter(~pl.col("indicateur").is_in(DURATIONS))
        self.known: dict[tuple, float] = {}
        self.unknown: dict[tuple, int] = {}
        self.dimensions: dict[tuple[str, str], set[tuple[str, str]]] = {}
        for mois, ind, dim, mod, val, statut in rows.select(
            "mois", "indicateur", "dimension", "modalite", "valeur", "statut"
        ).iter_rows():
            key = (mois, ind, dim, mod)
            if statut == "publie":
                self.known[key] = float(val)
            else:
                self.unknown[key] = len(self.unknown)
            if dim is not None:
                self.dimensions.setdefault((mois, ind), set()).add((dim, mod))
        self.months = sorted({k[0] for k in (*self.known, *self.unknown)})
        self.eq: list[tuple[dict[int, float], float]] = []
        self.le: list[tuple[dict[int, float], float]] = []

    def _linear(self, terms: list[tuple[float, tuple]]) -> tuple[dict[int, float], float]:
        coefficients: dict[int, float] = {}
        constant = 0.0
        for c, key in terms:
            if key in self.unknown:
                j = self.unknown[key]
                coefficients[j] = coefficients.get(j, 0.0) + c
            else:
                constant += c * self.known.get(key, 0.0)
        return coefficients, constant

    def equal(self, left: list[tuple], right: list[tuple]) -> None:
        coefficients, constant = self._linear([(1, k) for k in left] + [(-1, k) for k in right])
        if coefficients:
            self.eq.append((coefficients, -constant))

    def at_most(self, small: list[tuple], big: list[tuple]) -> None:
        coefficients, constant = self._linear([(1, k) for k in small] + [(-1, k) for k in big])
        if coefficients:
            self.le.append((coefficients, -constant))

    def write_constraints(self) -> None:
        for i, m in enumerate(self.months):
            for ind in ADDS_UP:
                parts = self.dimensions.get((m, ind), set())
                for family in {d for d, _ in parts}:
                    members = [(m, ind, d, v) for d, v in parts if d == family]
                    self.equal([(m, ind, None, None)], members)
            for ind in ("stock_households", "stock_persons"):
                for category in set(ETHOS_OF.values()):
                    situations = [s for s, e in ETHOS_OF.items() if e == category]
                    self.equal(
                        [(m, ind, "ethos", category)],
                        [(m, ind, "situation", s) for s in situations],
                    )
            for dim, mod in self.dimensions.get((m, "stock_households"), set()) | {(None, None)}:
                self.at_most([(m, "stock_households", dim, mod)], [(m, "stock_persons", dim, mod)])
            stock = (m, "stock_households", None, None)
            inflow = (m, "inflow_households", None, None)
            outflow = (m, "outflow_households", None, None)
            if i == 0:
                self.equal([stock, outflow], [inflow])
            else:
                before = (self.months[i - 1], "stock_households", None, None)
                self.equal([stock, outflow], [before, inflow])
                self.at_most([outflow], [before])
            self.at_most([inflow], [stock])
            r6, r12, r24 = ((m, "returns_from_housing", "within", w) for w in ("6", "12", "24"))
            self.at_most([r6], [r12])
            self.at_most([r12], [r24])
            self.equal([r24], [(m, "inflow_households", "type", "returned_from_housing")])
            for dim, mod in self.dimensions.get((m, "households_with_open_request"), set()):
                self.at_most([(m, "households_with_open_request", dim, mod)], [stock])
            self.equal(
                [(m, "households_with_open_request", "need", "urgence")],
                [(m, "households_seen_by_source", "source", "siao_urgence")],
            )
            priority = (m, "priority_not_housed", None, None)
            syplo = (m, "households_with_open_request", "need", "syplo")
            dalo = (m, "households_with_open_request", "need", "dalo")
            self.at_most([syplo], [priority])
            self.at_most([dalo], [priority])
            self.at_most([priority], [syplo, dalo])
            self.at_most([priority], [stock])
            self.at_most(
                [(m, "households_urgence_not_fulfilled", None, None)],
                [(m, "urgence_requests_not_fulfilled", None, None)],
            )
            sources = self.dimensions.get((m, "households_seen_by_source"), set())
            for dim, mod in sources:
                seen = (m, "households_seen_by_source", dim, mod)
                self.at_most([(m, "households_seen_only_by_source", dim, mod)], [seen])
                self.at_most([seen], [stock])
            self.at_most([(m, "households_seen_only_by_source", d, v) for d, v in sources], [stock])

    def intervals(self) -> dict[tuple, tuple[int, float]]:
        """Suppressed cell -> (lowest, highest) integer value the attacker cannot rule out."""
        self.write_constraints()
        n = len(self.unknown)

        def dense(rows):
            if not rows:
                return None, None
            a = np.zeros((len(rows), n))
            for r, (coefficients, _) in enumerate(rows):
                for j, c in coefficients.items():
                    a[r, j] = c
            return a, np.array([b for _, b in rows])

        a_eq, b_eq = dense(self.eq)
        a_ub, b_ub = dense(self.le)
        found = {}
        for key, j in self.unknown.items():
            c = np.zeros(n)
            c[j] = 1
            low = linprog(c, A_ub=a_ub, b_ub=b_ub, A_eq=a_eq, b_eq=b_eq, method="highs")
            high = linprog(-c, A_ub=a_ub, b_ub=b_ub, A_eq=a_eq, b_eq=b_eq, method="highs")
            assert low.status == 0, f"constraints inconsistent: {low.message}"
            top = math.inf if high.status == 3 else math.floor(-high.fun + 1e-7)
            found[key] = (math.ceil(low.fun - 1e-7), top)
        return found


def narrow_cells(published: pl.DataFrame, protection: int) -> dict[tuple, tuple[int, float]]:
    """The suppressed cells whose interval is narrower than `protection`."""
    found = Attack(published).intervals()
    return {k: (lo, hi) for k, (lo, hi) in found.items() if hi - lo < protection}
