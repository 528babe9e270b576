"""Property-based tests (hypothesis) of the readers and of name normalisation.

Whatever bytes a partner drops, a reader returns a table or refuses the file with a
`FileRejected`: never another exception, never a crash. Bounded (`max_examples`, no deadline
on a loaded machine) so that the whole module takes seconds.
"""

from __future__ import annotations

import io
import zipfile
from datetime import datetime
from pathlib import Path

import openpyxl
import polars as pl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from synchro_dagster.identity.normalise import clean
from synchro_dagster.ingest import read
from synchro_dagster.ingest.canonical import _reason_list
from synchro_dagster.ingest.errors import FileRejected
from synchro_dagster.ingest.read import RawTable, read_table
from synchro_dagster.sources import get

SNE, URGENCE = get("sne"), get("siao_urgence")
BOUNDED = settings(
    max_examples=40,
    deadline=None,
    database=None,  # no example database left in the work tree
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
HEADER = "NUM_UNIQUE;DATE_MAJ;NOM;PRENOM;SITUATION_LOGEMENT;ETAT_DEMANDE\r\n"
cells = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=12)


def read_or_refuse(path: Path, data: bytes, source=SNE) -> RawTable | None:
    path.write_bytes(data)
    try:
        table = read_table(path, source)
    except FileRejected as refused:
        assert refused.file == path.name and refused.fix
        return None
    assert table.frame.height > 0 and "row_number" in table.frame.columns
    return table


@BOUNDED
@given(st.binary(max_size=2048))
def test_random_bytes_as_a_csv(tmp_path, data):
    read_or_refuse(tmp_path / "sne.csv", data)


@BOUNDED
@given(st.lists(st.lists(cells, min_size=1, max_size=8), max_size=20), st.sampled_from(";,\t|"))
def test_random_grid_under_a_real_header_as_a_csv(tmp_path, rows, delimiter):
    body = "\r\n".join(delimiter.join(r) for r in rows)
    read_or_refuse(tmp_path / "sne.csv", (HEADER.replace(";", delimiter) + body).encode())


# what a CSV line holds, quotes aside: delimiters, spaces Python and Polars strip alike or not
plain_text = st.lists(
    st.sampled_from(
        ["a", "É", "1", ";", ",", " ", "\t", "\xa0", "\u3000", "\x0b", "\x1c", "\x85"]
        + ["\n", "\r\n", "\r", "\x00", '"']
    ),
    max_size=60,
).map("".join)


@settings(max_examples=300, deadline=None, database=None)
@given(plain_text, st.sampled_from(";,\t|"))
def test_a_csv_without_quotes_is_split_as_the_csv_module_splits_it(text, delimiter):
    """Polars splits a CSV without quotes (the usual export) into the same cells, line numbers
    and field counts as the csv module, which reads the others."""
    plain = read._plain_grid(text, delimiter)
    if plain is not None:
        grid, numbers, widths = read._quoted_grid(Path("x.csv"), text, delimiter)
        assert plain[0].equals(grid) and plain[1:] == (numbers, widths)


@BOUNDED
@given(st.binary(max_size=2048))
def test_random_bytes_as_an_xlsx(tmp_path, data):
    read_or_refuse(tmp_path / "115.xlsx", data, URGENCE)


grid_cells = st.one_of(
    st.none(),
    st.text(st.characters(codec="utf-8", exclude_categories=["Cs", "Cc"]), max_size=12),
    st.integers(-(10**6), 10**6),
    st.floats(allow_nan=False, allow_infinity=False, width=32),
    st.datetimes(min_value=datetime(1900, 3, 1), max_value=datetime(2100, 1, 1)),
)


@settings(max_examples=25, deadline=None, database=None)
@given(st.lists(st.lists(grid_cells, max_size=6), max_size=15), st.booleans())
def test_random_grid_as_an_xlsx(tmp_path_factory, rows, with_header):
    """Any cells (texts, numbers, dates, formulas), with or without the source's header."""
    wb = openpyxl.Workbook()
    if with_header:
        wb.active.append(["Date de la demande", "Nom", "Prénom", "Réponse"])
    for row in rows:
        wb.active.append(row)  # a text starting with « = » is a formula without its result
    path = tmp_path_factory.mktemp("grid") / "115.xlsx"
    wb.save(path)
    read_or_refuse(path, path.read_bytes(), URGENCE)


@settings(max_examples=25, deadline=None, database=None)
@given(st.binary(min_size=1, max_size=512), st.integers(0, 4096))
def test_a_damaged_zip_as_an_xlsx(tmp_path_factory, member, cut):
    """A real workbook whose sheet is random bytes, cut short anywhere."""
    wb = openpyxl.Workbook()
    wb.active.append(["Nom", "Prénom", "Date de la demande", "Réponse"])
    wb.active.append(["A", "B", "01/02/2025", "Pourvue"])
    real, broken = io.BytesIO(), io.BytesIO()
    wb.save(real)
    with zipfile.ZipFile(real) as source, zipfile.ZipFile(broken, "w") as z:
        for item in source.namelist():
            sheet = item == "xl/worksheets/sheet1.xml"
            z.writestr(item, member if sheet else source.read(item))
    data = broken.getvalue()
    folder = tmp_path_factory.mktemp("zip")
    read_or_refuse(folder / "115.xlsx", data[: len(data) - cut] if cut else data, URGENCE)


def cleaned(values: list[str]) -> list[str | None]:
    return (
        pl.DataFrame({"v": values}, schema={"v": pl.String})
        .select(clean(pl.col("v")))["v"]
        .to_list()
    )


@settings(max_examples=60, deadline=None, database=None)
@given(st.lists(st.text(max_size=40), min_size=1, max_size=30))
def test_name_normalisation_gives_ascii_capitals_and_is_idempotent(names):
    """Any Unicode (scripts, symbols, combining marks, controls) becomes ASCII capital letters
    and single spaces, or nothing; cleaning again changes nothing."""
    once = cleaned(names)
    for name in once:
        assert name is None or (name and all(c == " " or "A" <= c <= "Z" for c in name)), name
        assert name is None or (name == name.strip() and "  " not in name)
    assert cleaned([n or "" for n in once]) == once


REASON_CODES = (
    "formula:last_name",
    "no_identity",
    "unparseable_date:birth_date",
    "unknown_code:sex",
)


@BOUNDED
@given(st.lists(st.lists(st.booleans(), min_size=4, max_size=4), min_size=1, max_size=30))
def test_a_rows_reasons_are_those_that_apply_in_order(applies):
    """The reasons list of a row holds, in their order, the reasons whose condition holds: none
    gives an empty list (not a null), as a staged row needs."""
    frame = pl.DataFrame(applies, schema=[f"c{i}" for i in range(4)], orient="row")
    reasons = [pl.when(pl.col(f"c{i}")).then(pl.lit(code)) for i, code in enumerate(REASON_CODES)]
    out = frame.select(_reason_list(reasons).alias("r"))["r"].to_list()
    assert out == [[c for c, a in zip(REASON_CODES, row, strict=True) if a] for row in applies]
