"""What every stage's Dagster definitions share: owners, honest code versions, check results,
table schemas and lineage, failures that never carry an exception's text, and asset keys under
their territory."""

from __future__ import annotations

import ast
import hashlib
import importlib.util
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import date
from functools import cache
from pathlib import Path

import dagster as dg
import duckdb

from synchro_dagster import warehouse
from synchro_dagster.checks import CheckOutcome
from synchro_dagster.months import MonthsOutOfOrder, require_in_order
from synchro_dagster.observation.lineage import column_deps
from synchro_dagster.settings import Settings

OWNERS = ["team:observatoire"]
PACKAGE = "synchro_dagster"
DATA_FILES = ("*.sql", "*.json")  # read at run time by the modules beside them


def _file_of(name: str) -> Path | None:
    """The source file of a module; None when `name` is not a module (a function, a class)."""
    try:
        spec = importlib.util.find_spec(name)
    except ModuleNotFoundError:
        return None
    return Path(spec.origin) if spec and spec.origin and spec.origin.endswith(".py") else None


@cache
def _reads(path: Path) -> tuple[tuple[str, ...], frozenset[str]]:
    """A module file's project imports (modules, and names that may be modules) and its string
    constants (file names, SQL file stems), parsed once per process whatever asks."""
    imports: list[str] = []
    named: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith(PACKAGE):
            imports += [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
        elif isinstance(node, ast.Import):
            imports += [a.name for a in node.names if a.name.startswith(PACKAGE)]
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            named.add(node.value)
    return tuple(imports), frozenset(named)


@cache
def module_files(*modules: str) -> tuple[Path, ...]:
    """The files of `modules`, of every project module they import (recursively), and the SQL
    and JSON files beside them that they name: what computes an asset."""
    seen: dict[str, Path] = {}
    named: set[str] = set()  # string constants of the modules: file names, SQL file stems
    todo = list(modules)
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        path = _file_of(name)
        if path is None:
            continue
        seen[name] = path
        imports, constants = _reads(path)
        todo += imports
        named |= constants
    data = {
        f
        for path in seen.values()
        for pattern in DATA_FILES
        for f in path.parent.glob(pattern)
        # SQL files are named by their stem ("household_months"); others by their full name,
        # so that a column called "model" does not pull in model.json
        if f.name in named or (f.suffix == ".sql" and f.stem in named)
    }
    return tuple(sorted({*seen.values(), *data}))


ROOT = Path(__file__).resolve().parents[1]  # the package: names hash the same on any machine


def fingerprint(files: tuple[Path, ...], root: Path = ROOT) -> str:
    """A short hash of the files' names (relative to the package) and bytes."""
    digest = hashlib.sha256()
    for path in files:
        digest.update(path.resolve().relative_to(root).as_posix().encode())
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()[:12]


def code_version(*modules: str) -> str:
    """Changes whenever the code, SQL or model computing an asset changes: Dagster then shows
    the months materialised under older code."""
    return fingerprint(module_files(*modules))


def check_spec(
    name: str,
    asset: dg.AssetKey,
    description: str,
    partitions: dg.PartitionsDefinition,
    blocking: bool = False,
) -> dg.AssetCheckSpec:
    """A check evaluated per month: its results carry their partition."""
    with warnings.catch_warnings():  # partitioned checks are a preview in dagster 1.13
        warnings.simplefilter("ignore", dg.PreviewWarning)
        return dg.AssetCheckSpec(
            name, asset=asset, description=description, blocking=blocking, partitions_def=partitions
        )


def check_evaluation(
    outcome: CheckOutcome, asset: dg.AssetKey, partition: str
) -> dg.AssetCheckEvaluation:
    """A check result logged on its own (`context.log_event`), when the asset then fails and
    returns no result: a refused delivery's checks still say why in the UI."""
    return dg.AssetCheckEvaluation(
        asset_key=asset,
        check_name=outcome.name,
        passed=outcome.passed,
        severity=dg.AssetCheckSeverity(outcome.severity),
        metadata=outcome.metadata,
        partition=partition,
    )


def check_result(outcome: CheckOutcome) -> dg.AssetCheckResult:
    """A check's result; Dagster finds its asset by the check's name (each asset computation
    has its checks on one asset): the result follows the asset's key, territory included."""
    return dg.AssetCheckResult(
        check_name=outcome.name,
        passed=outcome.passed,
        severity=dg.AssetCheckSeverity(outcome.severity),
        metadata=outcome.metadata,
    )


def table_schema(table: str) -> dg.TableSchema:
    return dg.TableSchema(
        columns=[
            dg.TableColumn(c.name, c.type, description=c.comment or None)
            for c in warehouse.table(table).columns
        ]
    )


def column_lineage(table: str, territory: str | None) -> dg.TableColumnLineage:
    """Where each column of `table` comes from, as the territory's code location keys the
    assets holding the tables it reads."""
    return dg.TableColumnLineage(
        deps_by_column={
            column: [
                dg.TableColumnDep(
                    asset_key=territory_key(territory, dg.AssetKey(t.split("."))), column_name=c
                )
                for t, c in deps
            ]
            for column, deps in column_deps(table).items()
        }
    )


@contextmanager
def failing_without_text(what: str, then: str) -> Iterator[None]:
    """Turns any unexpected error into a `dg.Failure` naming its type only: an exception's text
    may quote a partner's cell."""
    try:
        yield
    except dg.Failure:
        raise
    except Exception as error:  # noqa: BLE001 - reported by type only
        raise dg.Failure(
            f"{what} failed: internal error {type(error).__name__} (message withheld, it may "
            f"quote partner data). {then}"
        ) from None


def require_months_in_order(
    conn: duckdb.DuckDBPyConnection, month: date, settings: Settings
) -> None:
    """Fails the step, saying what to run, if a month before `month` is not complete: identity
    and observation of a month never run before the month before it is (months.py)."""
    try:
        require_in_order(conn, month, settings)
    except MonthsOutOfOrder as out:
        raise dg.Failure(description=str(out)) from None


Asset = dg.AssetsDefinition | dg.AssetSpec


def territory_key(territory: str | None, key: dg.AssetKey) -> dg.AssetKey:
    """An asset's key in the code location of `territory` (`nord/staging/sne`): every territory
    on a shared instance has its own assets (README "Several territories"); without a territory,
    the key as the modules name it (`staging/sne`)."""
    return key.with_prefix(territory) if territory else key


def in_territory(territory: str | None, assets: Sequence[Asset]) -> list[Asset]:
    """Every asset moved under `territory`'s prefix, by Dagster's own re-keying (the one
    `load_assets_from_modules(key_prefix=...)` does): each asset's checks, deps and partition
    mappings follow its key. What the assets and sensors name at run time (results of a
    multi-asset, column lineage, run requests) goes through `territory_key`."""
    if not territory:
        return list(assets)
    keys = {k for a in assets for k in (a.keys if isinstance(a, dg.AssetsDefinition) else [a.key])}
    moved = {k: territory_key(territory, k) for k in keys}
    return [
        a.with_attributes(asset_key_replacements=moved)
        if isinstance(a, dg.AssetsDefinition)
        else a.replace_attributes(
            key=moved[a.key],
            deps=[d._replace(asset_key=moved.get(d.asset_key, d.asset_key)) for d in a.deps],
        )
        for a in assets
    ]
