"""Households no partner saw: a multiple-systems estimate from how the month's lists overlap.

Each household seen in the month (and without a home at its end) has a capture history: which
lists saw it. Lists are the partner sources, the small ones grouped (`LIST_GROUPS`). Within a
stratum of situations (`STRATA`: street services do not see the sheltered, and the other way
round, so the strata are estimated apart), the counts of the 2^K - 1 observable histories are
fitted by Poisson log-linear models: main effects plus at most `MAX_INTERACTIONS` two-list
interactions (the 115 and the hotels listing the same households is one). The unseen cell's
fitted mean is the estimate of the households no list saw. Models are averaged with BIC
weights (approximate posterior probabilities, as the HRDAG `dga` method averages over
decomposable graphs); each model's 95 % interval is its profile likelihood interval, and the
averaged interval the 2.5 and 97.5 percentiles of the models' weighted mixture. Strata add up
(their intervals in quadrature, each side apart). docs/estimation.md says what it assumes.
"""

from __future__ import annotations

import itertools
import json
import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from statistics import NormalDist

import numpy as np
from scipy.optimize import brentq
from scipy.special import gammaln

LIST_GROUPS: dict[str, tuple[str, ...]] = {
    "hebergeurs": ("hebergement", "logement_accompagne"),  # occupancy lists of providers
    "siao_insertion": ("siao_insertion",),
    "siao_urgence": ("siao_urgence",),
    "maraudes": ("maraudes",),
    "accueils_jour": ("accueils_jour",),
    "demande_logement": ("sne", "syplo", "dalo"),  # registers of housing demand
}
STRATA: dict[str, tuple[str, ...]] = {
    "abri": ("MISE_ABRI", "HOTEL", "HEB_INSERTION", "ASILE", "LOG_TEMP"),
    "rue": ("RUE", "SQUAT"),
    "tiers": ("TIERS", "INSTITUTION"),
}
MIN_LIST = 15  # a list seeing fewer households of a stratum is grouped with the other small ones
MIN_STRATUM = 50  # a stratum with fewer households seen is estimated with its neighbour
MAX_INTERACTIONS = 2
MIN_WEIGHT = 0.01  # models below this BIC weight are left out (and the weights renormalised)
DISAGREEMENT_FACTOR = 2.0  # models of weight >= 5 % whose unseen estimates differ more: unstable
ZERO_CELL_SHIFT = (
    0.25  # a 0.5 put in the zero cells moving the estimate more: a zero cell drives it
)
CAP_FACTOR = 10.0  # no model may put more than 10 times the seen households out of sight
# The least unseen a model can say (households): the profile interval's lower end. A model whose
# fit runs below it (the histories that fix the unseen cell are all empty: no household seen
# outside the lists it links) says no household is out of sight, and is taken at it.
UNSEEN_FLOOR = 1e-3
NORMAL = NormalDist()
Z95 = NORMAL.inv_cdf(0.975)
PROFILE_DROP = Z95**2 / 2  # log-likelihood drop at the ends of a 95 % profile interval


@dataclass(frozen=True)
class ModelFit:
    interactions: tuple[tuple[str, str], ...]
    unseen: float
    lower: float
    upper: float
    bic: float
    weight: float = 0.0

    @property
    def name(self) -> str:
        return (
            "independence"
            if not self.interactions
            else " + ".join(f"{a}*{b}" for a, b in self.interactions)
        )


@dataclass
class StratumEstimate:
    stratum: str
    lists: list[str]
    seen: int
    unseen: float | None = None
    lower: float | None = None
    upper: float | None = None
    models: list[ModelFit] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def models_json(self) -> str:
        return json.dumps(
            [
                {
                    "model": m.name,
                    "weight": round(m.weight, 4),
                    "unseen": round(m.unseen, 1),
                    "lower": round(m.lower, 1),
                    "upper": round(m.upper, 1),
                }
                for m in self.models
            ]
        )


def list_of(source: str) -> str:
    return next((g for g, members in LIST_GROUPS.items() if source in members), source)


def stratum_of(situation: str | None) -> str:
    return next((s for s, members in STRATA.items() if situation in members), "tiers")


# ------------------------------------------------------------------ one contingency table
def _design(k: int, interactions: Sequence[tuple[int, int]]) -> np.ndarray:
    """Rows: the 2^k - 1 observable histories (bit j = list j saw it); columns: intercept,
    main effects, the interactions' products."""
    cells = np.array([[(z >> j) & 1 for j in range(k)] for z in range(1, 2**k)], dtype=float)
    extra = [cells[:, a] * cells[:, b] for a, b in interactions]
    return np.column_stack([np.ones(len(cells)), cells, *extra])


EPS = float(np.finfo(float).eps)


@dataclass(frozen=True)
class _Fit:
    params: np.ndarray
    llf: float
    converged: bool


def _glm(
    y: np.ndarray,
    x: np.ndarray,
    offset: np.ndarray | None = None,
    start: np.ndarray | None = None,
    tol: float = 1e-6,
    max_iterations: int = 100,
) -> _Fit:
    """Poisson log-linear fit by iteratively reweighted least squares, as statsmodels' GLM
    does it (its start, its steps, its stopping rule: the deviance changing by less than `tol`;
    the parameters of the last weighted least squares, by pseudo-inverse), in a few lines of
    numpy: a month fits some 600 of these small tables, and statsmodels took 1.5 s to import
    and 2 ms a fit, for a design of at most 63 rows."""
    offset = np.zeros(len(y)) if offset is None else offset
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        if start is None:
            mu = (y + y.mean()) / 2
            eta = np.log(np.clip(mu, EPS, np.inf))
        else:
            eta = x @ start + offset
            mu = np.exp(eta)

        def deviance(mu: np.ndarray) -> float:
            return float(2 * np.sum(y * np.log(np.clip(y / mu, EPS, np.inf)) - (y - mu)))

        previous, converged = deviance(mu), False
        for _ in range(max_iterations):
            safe = np.clip(mu, EPS, np.inf)
            weights = safe**2 / np.abs(mu)
            z = eta + (y - mu) / safe - offset
            if not (np.all(np.isfinite(weights)) and np.all(np.isfinite(z))):
                raise ValueError("Poisson fit: weights or working response not finite")
            root = np.sqrt(weights)
            params = np.linalg.lstsq(root[:, None] * x, root * z, rcond=-1)[0]
            eta = x @ params + offset
            mu = np.exp(eta)
            current = deviance(mu)
            converged = bool(np.isclose(previous, current, atol=tol, rtol=0))
            previous = current
            if converged:
                break
        params = np.linalg.pinv(root[:, None] * x, rcond=1e-15) @ (root * z)
        mu = np.exp(x @ params + offset)
        llf = float(np.sum(y * np.log(mu) - mu - gammaln(y + 1)))
    return _Fit(params, llf, converged)


def counts_of(histories: Iterable[frozenset[str]], lists: Sequence[str]) -> np.ndarray:
    """Households per observable history (index z - 1, bit j = lists[j])."""
    index = {name: j for j, name in enumerate(lists)}
    y = np.zeros(2 ** len(lists) - 1)
    for history, n in Counter(histories).items():
        z = sum(1 << index[name] for name in history)
        y[z - 1] += n
    return y


@dataclass(frozen=True)
class _Mle:
    pairs: tuple[tuple[int, int], ...]
    b0: float  # log of the unseen cell's fitted mean
    llf: float
    bic: float
    rest: np.ndarray  # the other parameters: where the profile's fits start


def _mle(y: np.ndarray, k: int, pairs: Sequence[tuple[int, int]]) -> _Mle | None:
    """Maximum likelihood fit of one model; None when it does not converge or puts more than
    CAP_FACTOR times the seen out of sight."""
    x = _design(k, pairs)
    res = _glm(y, x)
    b0 = float(res.params[0])
    if not res.converged or not math.isfinite(b0) or b0 > _cap(y):
        return None
    bic = -2 * float(res.llf) + x.shape[1] * math.log(max(float(y.sum()), 2.0))
    return _Mle(tuple(pairs), b0, float(res.llf), bic, np.asarray(res.params[1:]))


def _cap(y: np.ndarray) -> float:
    return math.log(CAP_FACTOR * max(float(y.sum()), 1.0))


def _profile(y: np.ndarray, k: int, mle: _Mle) -> tuple[float, float]:
    """95 % profile likelihood interval of the unseen cell's log-mean: where forcing it away
    from the maximum costs PROFILE_DROP of log-likelihood."""
    x = _design(k, mle.pairs)[:, 1:]

    def drop(t: float) -> float:
        fit = _glm(y, x, offset=np.full(len(y), t), start=mle.rest)
        return mle.llf - float(fit.llf) - PROFILE_DROP

    def end(direction: int, limit: float) -> float:
        step, t = 0.5, mle.b0
        while True:
            nxt = t + direction * step
            if (nxt - limit) * direction >= 0:
                return limit if drop(limit) < 0 else brentq(drop, t, limit, xtol=1e-3)
            if drop(nxt) >= 0:
                return brentq(drop, t, nxt, xtol=1e-3)
            t, step = nxt, step * 2

    return end(-1, math.log(UNSEEN_FLOOR)), end(1, _cap(y))


def candidate_interactions(k: int) -> list[tuple[tuple[int, int], ...]]:
    pairs = list(itertools.combinations(range(k), 2))
    most = MAX_INTERACTIONS if k >= 3 else 0  # two lists: independence (Lincoln-Petersen) only
    return [c for r in range(most + 1) for c in itertools.combinations(pairs, r)]


def _mixture_quantile(models: Sequence[ModelFit], q: float) -> float:
    """Quantile of the weighted mixture of the models' split normals on the log scale."""

    def cdf(v: float) -> float:
        total = 0.0
        for m in models:
            centre = math.log(m.unseen)
            side = (centre - math.log(m.lower)) if v < centre else (math.log(m.upper) - centre)
            total += m.weight * NORMAL.cdf((v - centre) / max(side / Z95, 1e-9))
        return total - q

    lo = min(math.log(m.lower) for m in models) - 1
    hi = max(math.log(m.upper) for m in models) + 1
    return math.exp(brentq(cdf, lo, hi, xtol=1e-6))


def estimate_table(
    stratum: str, histories: Sequence[frozenset[str]], lists: Sequence[str]
) -> StratumEstimate:
    """Averaged estimate of the unseen for one stratum's histories over `lists`."""
    out = StratumEstimate(stratum, list(lists), len(histories))
    if len(lists) < 2:
        out.warnings.append("one_list")
        return out
    y, k = counts_of(histories, lists), len(lists)
    fits = [f for c in candidate_interactions(k) if (f := _mle(y, k, c))]
    if not fits:
        out.warnings.append("no_model")
        return out
    best = min(f.bic for f in fits)
    raw = [math.exp(-(f.bic - best) / 2) for f in fits]
    kept = [(f, w) for f, w in zip(fits, raw, strict=True) if w / sum(raw) >= MIN_WEIGHT]
    total = sum(w for _, w in kept)
    models = []
    for f, w in kept:  # the profile (a few dozen fits) only for the models that count
        lower, upper = _profile(y, k, f)
        named = tuple((lists[a], lists[b]) for a, b in f.pairs)
        unseen = max(math.exp(f.b0), UNSEEN_FLOOR)  # each interval holds its estimate
        models.append(
            ModelFit(
                named,
                unseen,
                min(math.exp(lower), unseen),
                max(math.exp(upper), unseen),
                f.bic,
                w / total,
            )
        )
    out.models = sorted(models, key=lambda m: -m.weight)
    out.unseen = sum(m.weight * m.unseen for m in out.models)
    out.lower = min(out.unseen, _mixture_quantile(out.models, 0.025))
    out.upper = max(out.unseen, _mixture_quantile(out.models, 0.975))
    heavy = [m.unseen for m in out.models if m.weight >= 0.05]
    if max(heavy) > DISAGREEMENT_FACTOR * max(min(heavy), 1.0):
        out.warnings.append("models_disagree")
    if any(m.unseen == UNSEEN_FLOOR for m in out.models if m.weight >= 0.05):
        out.warnings.append("model_at_zero")
    if (y == 0).any():
        top = out.models[0]
        index = {name: j for j, name in enumerate(lists)}
        shifted = _mle(
            np.where(y == 0, 0.5, y), k, [(index[a], index[b]) for a, b in top.interactions]
        )
        moved = abs((math.exp(shifted.b0) if shifted else math.inf) - top.unseen)
        if moved > max(ZERO_CELL_SHIFT * top.unseen, 5.0):
            out.warnings.append("zero_cell")
    if out.upper >= CAP_FACTOR * max(len(histories), 1) * 0.999:
        out.warnings.append("capped")
    return out


# ------------------------------------------------------------------ a month
def _group_strata(sizes: dict[str, int]) -> dict[str, str]:
    """Stratum -> the stratum it is estimated in: one under MIN_STRATUM joins its neighbour."""
    groups = [[s] for s in STRATA if sizes.get(s, 0) > 0]
    while len(groups) > 1:
        small = [i for i, g in enumerate(groups) if sum(sizes[s] for s in g) < MIN_STRATUM]
        if not small:
            break
        i = small[0]
        j = i + 1 if i + 1 < len(groups) else i - 1
        a, b = min(i, j), max(i, j)
        groups[a] += groups.pop(b)
    return {s: "+".join(g) for g in groups for s in g}


def _lists_for(histories: Sequence[frozenset[str]]) -> tuple[list[str], dict[str, str]]:
    """The lists a stratum is estimated with: those under MIN_LIST households grouped into
    `autres` (itself joined to the smallest list if still under); and the renaming."""
    sizes = Counter(name for h in histories for name in h)
    small = sorted(n for n, c in sizes.items() if c < MIN_LIST)
    rename = {n: "autres" for n in small}
    big = sorted((n for n in sizes if n not in rename), key=lambda n: (sizes[n], n))
    if small and sum(sizes[n] for n in small) < MIN_LIST and big:
        rename = {n: big[0] for n in small}
    return sorted({rename.get(n, n) for n in sizes}), rename


def estimate_month(seen: Sequence[tuple[str | None, Sequence[str]]]) -> list[StratumEstimate]:
    """seen: (situation, sources of the month) of each household seen in the month and without
    a home at its end. One estimate per stratum (as grouped)."""
    by_stratum: dict[str, list[frozenset[str]]] = {}
    for situation, sources in seen:
        by_stratum.setdefault(stratum_of(situation), []).append(
            frozenset(list_of(s) for s in sources)
        )
    grouping = _group_strata({s: len(h) for s, h in by_stratum.items()})
    merged: dict[str, list[frozenset[str]]] = {}
    for s, histories in by_stratum.items():
        merged.setdefault(grouping[s], []).extend(histories)
    out = []
    for name, histories in merged.items():
        lists, rename = _lists_for(histories)
        renamed = [frozenset(rename.get(n, n) for n in h) for h in histories]
        est = estimate_table(name, renamed, lists)
        sizes = Counter(n for h in renamed for n in h)
        est.warnings += [f"list_too_small:{n}" for n in lists if sizes[n] < MIN_LIST]
        if len(histories) < MIN_STRATUM:
            est.warnings.append("stratum_too_small")
        out.append(est)
    return sorted(out, key=lambda e: e.stratum)


def total(strata: Sequence[StratumEstimate]) -> tuple[float, float, float] | None:
    """Unseen households of all strata: estimate, lower, upper (each side's distances to the
    estimate added in quadrature, the strata being independent). None if one has no estimate."""
    if not strata or any(s.unseen is None for s in strata):
        return None
    unseen = sum(s.unseen for s in strata)  # type: ignore[misc]
    below = math.sqrt(sum((s.unseen - s.lower) ** 2 for s in strata))  # type: ignore[operator]
    above = math.sqrt(sum((s.upper - s.unseen) ** 2 for s in strata))  # type: ignore[operator]
    return unseen, max(0.0, unseen - below), unseen + above
