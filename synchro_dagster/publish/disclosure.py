"""Disclosure control of the public indicators: primary and secondary cell suppression.

The cells are `marts.indicators` over all months: one value per month, indicator and dimension.

- Primary: a count cell under `min_cell` and not zero (a persons or requests cell also when the
  households behind it are under `min_cell`); a duration computed on fewer than `min_cell`
  households (its base, BASES).
- Secondary: the relations a reader of the published table knows (RELATIONS, below) tie cells
  together, so a suppressed cell could be recomputed from published ones. The audit computes,
  with linear programming, the interval every suppressed count cell can take given all of them;
  while one is narrower than `min_cell`, the cheapest published non-zero cell of a relation that
  binds it is suppressed too, and the audit runs again.

Guarantee (what the attacker's test checks): for every suppressed count cell, the integer
interval [ceil(min), floor(max)] it can take under the relations, non-negativity and the
published values has width >= min_cell. Zeros are published and never chosen as a complement.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date

import numpy as np
import polars as pl
from scipy import sparse
from scipy.optimize import linprog

from synchro_dagster.indicators.definitions import INDICATORS

PUBLISHED, PRIMARY, SECONDARY = "publie", "secret_primaire", "secret_secondaire"

# a duration -> the count of households it is computed on: (indicator, dimension prefix; None
# for the total). Fewer than min_cell households: the duration is not published.
BASES: dict[str, tuple[str, str | None]] = {
    "median_months_since_first_seen": ("stock_households", None),
    "mean_months_to_housing": ("outflow_households", "type=to_housing:"),
    "median_months_to_housing": ("outflow_households", "type=to_housing:"),
    "median_months_waiting_priority": ("priority_not_housed", None),
}
# a count of persons or requests -> the count of households behind it, same month and dimension
HOUSEHOLDS_BEHIND: dict[str, str] = {
    "stock_persons": "stock_households",
    "urgence_requests_not_fulfilled": "households_urgence_not_fulfilled",
}
# ETHOS Light category -> the situations it gathers (observation/household_months.sql)
ETHOS: dict[str, tuple[str, ...]] = {
    "1": ("RUE",),
    "2": ("MISE_ABRI", "HOTEL"),
    "3": ("HEB_INSERTION", "LOG_TEMP"),
    "3 (asile)": ("ASILE",),
    "4": ("INSTITUTION",),
    "5": ("SQUAT",),
    "6": ("TIERS",),
}
_DURATIONS = {i.name for i in INDICATORS if i.unit == "months"}
if set(BASES) != _DURATIONS:
    raise RuntimeError(f"durations without a base in disclosure.BASES: {_DURATIONS ^ set(BASES)}")


class DisclosureError(RuntimeError):
    """The table cannot be protected as the rules require."""


@dataclass(frozen=True)
class Relation:
    """sum(coefficient * cell) == 0 (equality) or <= 0, over cell indices."""

    name: str
    terms: tuple[tuple[int, float], ...]
    equality: bool


# ----------------------------------------------------------------- primary
def primary(cells: pl.DataFrame, min_cell: int) -> np.ndarray:
    """Cells under the threshold: counts (and the households behind them), durations' bases."""
    index = _index(cells)
    values = cells["value"].to_numpy()

    def count(month: date, indicator: str, prefix: str | None) -> float:
        if prefix is None:
            i = index.get((month, indicator, None))
            return 0.0 if i is None else values[i]
        return sum(
            values[i]
            for (m, ind, dim), i in index.items()
            if m == month and ind == indicator and dim is not None and dim.startswith(prefix)
        )

    small = [False] * cells.height
    for i, (month, indicator, dimension, value) in enumerate(
        cells.select("month", "indicator", "dimension", "value").iter_rows()
    ):
        if indicator in BASES:
            base_indicator, prefix = BASES[indicator]
            small[i] = count(month, base_indicator, prefix) < min_cell
            continue
        behind = index.get((month, HOUSEHOLDS_BEHIND.get(indicator, ""), dimension))
        households = value if behind is None else values[behind]
        small[i] = value != 0 and (value < min_cell or 0 < households < min_cell)
    return np.array(small, dtype=bool)


# ----------------------------------------------------------------- what a reader knows
def relations(cells: pl.DataFrame, lookback_months: int) -> list[Relation]:
    """Every linear relation between cells that holds by construction (documented in the
    README, "Public figures"); those the data does not satisfy are left out."""
    values = cells["value"].to_numpy()
    found = [r for r in _candidate_relations(cells, lookback_months) if r.terms]
    return [r for r in found if _holds(r, values)]


def _holds(relation: Relation, values: np.ndarray) -> bool:
    total = sum(c * values[i] for i, c in relation.terms)
    return abs(total) < 1e-6 if relation.equality else total < 1e-6


def _candidate_relations(cells: pl.DataFrame, lookback_months: int) -> Iterator[Relation]:
    index = _index(cells)
    months = sorted(set(cells["month"]))
    additive = [i.name for i in INDICATORS if i.additive]

    def cell(month: date, indicator: str, dimension: str | None = None) -> int | None:
        return index.get((month, indicator, dimension))

    def rel(name: str, plus: list, minus: list, equality: bool) -> Relation:
        """sum(plus) - sum(minus) == 0, or <= 0; absent cells are zeros."""
        terms: dict[int, float] = {}
        for items, sign in ((plus, 1.0), (minus, -1.0)):
            for i in items:
                if i is not None:
                    terms[i] = terms.get(i, 0.0) + sign
        return Relation(name, tuple((i, c) for i, c in terms.items() if c), equality)

    dims: dict[tuple[date, str], list[str]] = {}
    for (month, indicator, dimension), _ in index.items():
        if dimension is not None:
            dims.setdefault((month, indicator), []).append(dimension)

    for month in months:
        m = month.strftime("%Y-%m")
        for indicator in additive:  # parts of each family add up to the total
            families: dict[str, list[int]] = {}
            for dimension in dims.get((month, indicator), []):
                families.setdefault(dimension.split("=")[0], []).append(
                    index[(month, indicator, dimension)]
                )
            for family, parts in families.items():
                total = cell(month, indicator)
                yield rel(f"{m} {indicator}: {family} parts = total", [total], parts, True)
        for indicator in ("stock_households", "stock_persons"):
            for category, situations in ETHOS.items():
                yield rel(
                    f"{m} {indicator}: ethos={category} = its situations",
                    [cell(month, indicator, f"ethos={category}")],
                    [cell(month, indicator, f"situation={s}") for s in situations],
                    True,
                )
        for dimension in [None, *dims.get((month, "stock_households"), [])]:
            yield rel(
                f"{m} stock households <= persons ({dimension or 'total'})",
                [cell(month, "stock_households", dimension)],
                [cell(month, "stock_persons", dimension)],
                False,
            )
        stock = cell(month, "stock_households")
        inflow, outflow = cell(month, "inflow_households"), cell(month, "outflow_households")
        previous = _previous(month)
        if previous in months:  # stock(M) = stock(M-1) + inflow(M) - outflow(M)
            before = cell(previous, "stock_households")
            yield rel(f"{m} stock balance", [stock, outflow], [before, inflow], True)
            yield rel(f"{m} outflow <= last month's stock", [outflow], [before], False)
        elif month == months[0]:  # the first month observed: the whole stock is an inflow
            yield rel(f"{m} first month: stock balance", [stock, outflow], [inflow], True)
        yield rel(f"{m} inflow <= stock", [inflow], [stock], False)
        within = [cell(month, "returns_from_housing", f"within={w}") for w in (6, 12, 24)]
        yield rel(f"{m} returns within 6 <= 12 months", [within[0]], [within[1]], False)
        yield rel(f"{m} returns within 12 <= 24 months", [within[1]], [within[2]], False)
        returned = cell(month, "inflow_households", "type=returned_from_housing")
        yield rel(  # an exit is seen only within the look-back
            f"{m} returns within 24 months vs returned_from_housing",
            [within[2]],
            [returned],
            lookback_months <= 24,
        )
        for dimension in dims.get((month, "households_with_open_request"), []):
            yield rel(
                f"{m} open requests ({dimension}) <= stock",
                [cell(month, "households_with_open_request", dimension)],
                [stock],
                False,
            )
        yield rel(  # an open 115 request is a 115 request of the month: the 115 saw them
            f"{m} open urgence requests = households the 115 saw",
            [cell(month, "households_with_open_request", "need=urgence")],
            [cell(month, "households_seen_by_source", "source=siao_urgence")],
            True,
        )
        priority = cell(month, "priority_not_housed")
        syplo = cell(month, "households_with_open_request", "need=syplo")
        dalo = cell(month, "households_with_open_request", "need=dalo")
        yield rel(f"{m} priority >= syplo", [syplo], [priority], False)
        yield rel(f"{m} priority >= dalo", [dalo], [priority], False)
        yield rel(f"{m} priority <= syplo + dalo", [priority], [syplo, dalo], False)
        yield rel(f"{m} priority <= stock", [priority], [stock], False)
        yield rel(
            f"{m} households with a 115 request not fulfilled <= such requests",
            [cell(month, "households_urgence_not_fulfilled")],
            [cell(month, "urgence_requests_not_fulfilled")],
            False,
        )
        only = []
        for dimension in dims.get((month, "households_seen_by_source"), []):
            seen = cell(month, "households_seen_by_source", dimension)
            only.append(cell(month, "households_seen_only_by_source", dimension))
            yield rel(f"{m} seen only by ({dimension}) <= seen by", [only[-1]], [seen], False)
            yield rel(f"{m} seen by ({dimension}) <= stock", [seen], [stock], False)
        yield rel(f"{m} seen by one source only, all sources <= stock", only, [stock], False)


def _previous(month: date) -> date:
    return date(month.year - 1, 12, 1) if month.month == 1 else date(month.year, month.month - 1, 1)


def _index(cells: pl.DataFrame) -> dict[tuple[date, str, str | None], int]:
    keys = cells.select("month", "indicator", "dimension").iter_rows()
    return {key: i for i, key in enumerate(keys)}


# ----------------------------------------------------------------- audit
@dataclass(frozen=True)
class Interval:
    low: float
    high: float
    binding: frozenset[int]  # relations limiting the interval (non-zero duals)

    @property
    def width(self) -> float:
        """Width of the integer interval the cell can take (inf when unbounded)."""
        if math.isinf(self.high):
            return math.inf
        return math.floor(self.high + 1e-7) - math.ceil(self.low - 1e-7)


def audit(values: np.ndarray, suppressed: np.ndarray, rels: list[Relation]) -> dict[int, Interval]:
    """The interval every suppressed cell can take, given the published values, the relations
    and non-negativity: a min and a max linear programme per cell (HiGHS), by component of
    cells the relations tie together."""
    result: dict[int, Interval] = {}
    for component, members in _components(suppressed, rels):
        result.update(_solve(values, suppressed, component, [rels[k] for k in members], members))
    return result


def _components(suppressed: np.ndarray, rels: list[Relation]) -> list[tuple[list[int], list[int]]]:
    """Groups of suppressed cells tied by relations, with the relations each group appears in."""
    parent = {int(i): int(i) for i in np.flatnonzero(suppressed)}

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for r in rels:
        hidden = [i for i, _ in r.terms if suppressed[i]]
        for i in hidden[1:]:
            parent[find(i)] = find(hidden[0])
    cells: dict[int, list[int]] = {}
    for i in parent:
        cells.setdefault(find(i), []).append(i)
    members: dict[int, list[int]] = {}
    for k, r in enumerate(rels):
        hidden = [i for i, _ in r.terms if suppressed[i]]
        if hidden:
            members.setdefault(find(hidden[0]), []).append(k)
    return [(sorted(c), members.get(root, [])) for root, c in cells.items()]


def _solve(
    values: np.ndarray,
    suppressed: np.ndarray,
    component: list[int],
    rels: list[Relation],
    rel_ids: list[int],
) -> dict[int, Interval]:
    column = {cell: j for j, cell in enumerate(component)}
    eq, ub = [], []
    for k, r in zip(rel_ids, rels, strict=True):
        row = {column[i]: c for i, c in r.terms if suppressed[i]}
        known = sum(c * values[i] for i, c in r.terms if not suppressed[i])
        (eq if r.equality else ub).append((k, row, -known))

    def matrix(rows: list) -> tuple[sparse.csr_matrix | None, np.ndarray | None]:
        if not rows:
            return None, None
        data = [(n, j, c) for n, (_, row, _) in enumerate(rows) for j, c in row.items()]
        r, c, v = zip(*data, strict=True)
        shape = (len(rows), len(component))
        return sparse.csr_matrix((v, (r, c)), shape=shape), np.array([b for *_, b in rows])

    a_eq, b_eq = matrix(eq)
    a_ub, b_ub = matrix(ub)
    out = {}
    for cell, j in column.items():
        bounds, binding = [], set()
        for sign in (1.0, -1.0):
            objective = np.zeros(len(component))
            objective[j] = sign
            res = linprog(objective, A_ub=a_ub, b_ub=b_ub, A_eq=a_eq, b_eq=b_eq, method="highs")
            if res.status == 3:  # unbounded above (a minimum is at least 0)
                bounds.append(math.inf)
                continue
            if res.status != 0:
                raise DisclosureError(f"audit: the linear programme failed ({res.message})")
            bounds.append(sign * res.fun)
            for rows, duals in ((eq, res.eqlin.marginals), (ub, res.ineqlin.marginals)):
                if rows:
                    binding |= {rows[n][0] for n in np.flatnonzero(np.abs(duals) > 1e-9)}
        out[cell] = Interval(bounds[0], bounds[1], frozenset(binding))
    return out


# ----------------------------------------------------------------- secondary
def protect(
    cells: pl.DataFrame, min_cell: int, lookback_months: int, max_rounds: int = 500
) -> list[str]:
    """The status of every cell (PUBLISHED, PRIMARY, SECONDARY), in the cells' order."""
    values = cells["value"].to_numpy().astype(float)
    first = primary(cells, min_cell)
    counts = ~cells["indicator"].is_in(list(BASES)).to_numpy()
    suppressed = first & counts  # durations are in no relation
    rels = relations(cells, lookback_months)
    holding: dict[int, list[int]] = {}
    for k, r in enumerate(rels):
        for i, _ in r.terms:
            holding.setdefault(i, []).append(k)
    for _ in range(max_rounds):
        narrow = sorted(
            ((iv.width, cell, iv) for cell, iv in audit(values, suppressed, rels).items()),
            key=lambda t: (t[0], t[1]),
        )
        narrow = [(cell, iv) for width, cell, iv in narrow if width < min_cell]
        if not narrow:
            break
        touched: set[int] = set()
        for cell, iv in narrow:
            if touched & (iv.binding or set(holding.get(cell, []))):
                continue  # a complement chosen this round may already protect it
            complement = _complement(cell, iv, values, suppressed, rels, holding)
            suppressed[complement] = True
            touched |= set(holding[complement])
    else:
        raise DisclosureError(f"secondary suppression did not converge in {max_rounds} rounds")
    return [
        PRIMARY if f else SECONDARY if s else PUBLISHED
        for f, s in zip(first, suppressed, strict=True)
    ]


def _complement(
    cell: int,
    interval: Interval,
    values: np.ndarray,
    suppressed: np.ndarray,
    rels: list[Relation],
    holding: dict[int, list[int]],
) -> int:
    """The published non-zero cell to suppress with `cell`: the smallest of the relations that
    bind it (else of every relation it is in), so that the least is hidden."""
    for scope in (interval.binding, holding.get(cell, [])):
        candidates = {
            i for k in scope for i, _ in rels[k].terms if not suppressed[i] and values[i] != 0
        }
        if candidates:
            return min(candidates, key=lambda i: (values[i], i))
    raise DisclosureError(
        "a suppressed cell cannot be protected: every cell related to it is already suppressed "
        "or zero"
    )
