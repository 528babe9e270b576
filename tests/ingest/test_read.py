"""The tolerant reader and the canonical mapping, piece by piece, on small hand-made files."""

from __future__ import annotations

from datetime import date

import polars as pl
import pytest
from filekit import write_xlsx

from synchro_dagster.ingest.canonical import canonical, code_lookup, parse_date, split_full_name
from synchro_dagster.ingest.read import decode, read_table, sniff_delimiter
from synchro_dagster.sources import get

MONTH = date(2025, 2, 1)
URGENCE_HEADER = ["Date de la demande", "Nom", "Prénom", "Date de naissance", "Sexe", "Réponse"]
URGENCE_ROWS = [
    ["03/02/2025", "Lefèvre", "Hélène", "12/05/1965", "F", "Pourvue"],
    ["04/02/2025", "N'DIAYE", "Moussa", "01/01/1990", "H", "Non pourvue"],
]


# ----------------------------------------------------------------- CSV: delimiter and encoding
@pytest.mark.parametrize(
    ("text", "delimiter"),
    [
        ("a;b;c\n1;2;3\n", ";"),
        ("a,b,c\n1,2,3\n", ","),
        ("a\tb\tc\n1\t2\t3\n", "\t"),
        ("Titre de l'export\n\nNom;Prénom;Date\nDupont, Jean;x;1,5\n", ";"),  # commas in cells
        ('Nom,Prénom,Date\n"Dupont; Jean",x,y\nMartin,Paul,z\n', ","),
    ],
)
def test_delimiter_sniffing(text, delimiter):
    assert sniff_delimiter(text) == delimiter


@pytest.mark.parametrize(
    "raw",
    [
        "Prénom;Hélène".encode(),
        b"\xef\xbb\xbf" + "Prénom;Hélène".encode(),
        "Prénom;Hélène".encode("cp1252"),
    ],
    ids=["utf-8", "utf-8 with BOM", "cp1252"],
)
def test_encoding_detection(raw):
    assert decode(raw) == "Prénom;Hélène"


@pytest.mark.parametrize(
    ("encoding", "delimiter"),
    [("cp1252", ";"), ("utf-8-sig", ","), ("utf-8", "\t")],
    ids=["cp1252 semicolon", "utf-8 BOM comma", "utf-8 tab"],
)
def test_csv_read_whatever_its_encoding_and_delimiter(tmp_path, encoding, delimiter):
    path = tmp_path / "115.csv"
    lines = [URGENCE_HEADER, *URGENCE_ROWS]
    path.write_bytes("\r\n".join(delimiter.join(r) for r in lines).encode(encoding))
    raw = read_table(path, get("siao_urgence"))
    assert raw.header_row == 1 and raw.sheet is None
    assert raw.headers["first_name"] == "Prénom" and raw.headers["response"] == "Réponse"
    assert raw.frame["first_name"].to_list() == ["Hélène", "Moussa"]
    assert raw.frame["row_number"].to_list() == [2, 3]


# ----------------------------------------------------------------- header and sheet
def test_header_found_below_a_title_block(tmp_path):
    sheet = [
        (1, ["SI-SIAO Urgence — Extraction des demandes"]),
        (2, ["Période : février 2025", None, "édité le 01/03/2025"]),
        (3, []),
        (4, URGENCE_HEADER + ["Motif"]),
        (5, URGENCE_ROWS[0] + [None]),
        (6, []),
        (7, URGENCE_ROWS[1] + ["Absence de place"]),
        (8, ["Total : 2 demandes"]),
    ]
    write_xlsx(path := tmp_path / "115.xlsx", sheet)
    raw = read_table(path, get("siao_urgence"))
    assert raw.header_row == 4
    assert raw.frame["row_number"].to_list() == [5, 7]  # the rows a person sees
    assert raw.frame["last_name"].to_list() == ["Lefèvre", "N'DIAYE"]
    assert raw.rows_ignored == 2  # the blank row and the totals line
    assert raw.unmapped_headers == [(7, "Motif")]


def test_header_found_below_a_title_block_in_a_csv(tmp_path):
    path = tmp_path / "115.csv"
    lines = ["Extraction du 01/03/2025", "", ";".join(URGENCE_HEADER)]
    lines += [";".join(r) for r in URGENCE_ROWS]
    path.write_bytes("\r\n".join(lines).encode("cp1252"))
    raw = read_table(path, get("siao_urgence"))
    assert raw.header_row == 3 and raw.frame["row_number"].to_list() == [4, 5]


def test_totals_lines_are_not_records_but_a_person_named_total_is(tmp_path):
    header = ["Nom", "Prénom", "Date de la demande", "Nb personnes", "Réponse"]
    sheet = [
        (1, header),
        (2, ["TOTAL", "Jean", "03/02/2025", 1, "Pourvue"]),  # a surname, in the name column
        (3, ["Martin", "Paul", "04/02/2025", 2, "Non pourvue"]),
        (4, [None, None, "Sous-total", 3]),
        (5, [None, None, "TOTAL :", 3, None]),
    ]
    write_xlsx(path := tmp_path / "115.xlsx", sheet)
    raw = read_table(path, get("siao_urgence"))
    assert raw.frame["row_number"].to_list() == [2, 3]
    assert raw.frame["last_name"].to_list() == ["TOTAL", "Martin"]
    assert raw.rows_ignored == 2


@pytest.mark.parametrize("data_first", [True, False])
def test_sheet_chosen_by_header_match(tmp_path, data_first):
    data = [(1, URGENCE_HEADER), *[(i, r) for i, r in enumerate(URGENCE_ROWS, start=2)]]
    decoy = [["Synthèse du mois"], ["Date", "Nom", "Total"], ["02/2025", "Demandes", 2]]
    path = tmp_path / "115.xlsx"
    if data_first:  # the data sheet, then a summary
        write_xlsx(path, data, sheets_after={"Synthèse": decoy})
    else:
        write_xlsx(path, data, sheets_before={"Synthèse": decoy})
    raw = read_table(path, get("siao_urgence"))
    assert raw.sheet == "Données" and raw.frame.height == 2


# ----------------------------------------------------------------- dates
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("45658", date(2025, 1, 1)),  # Excel serial number
        ("45658.0", date(2025, 1, 1)),  # a serial read from a float cell
        ("2025-03-01 00:00:00", date(2025, 3, 1)),  # a date cell read as text
        ("2025-03-01T14:30:00", date(2025, 3, 1)),
        ("2025-03-01", date(2025, 3, 1)),
        ("01/03/2025", date(2025, 3, 1)),
        ("1/3/2025", date(2025, 3, 1)),
        ("01.03.2025", date(2025, 3, 1)),
        ("01-03-2025", date(2025, 3, 1)),
        ("01/03/2025 14:30", date(2025, 3, 1)),  # a date-time cell saved as text
        ("01/03/25", date(2025, 3, 1)),
        (" 01/03/2025 ", date(2025, 3, 1)),
        ("31/02/1987", None),
        ("1987-02-31", None),
        ("13/13/2020", None),
        ("bientôt", None),
        ("", None),
    ],
)
def test_dates_in_every_form_partners_send(text, expected):
    assert pl.DataFrame({"d": [text]}).select(parse_date(pl.col("d")))["d"][0] == expected


def canonical_rows(source: str, **columns: list[str | None]) -> pl.DataFrame:
    n = len(next(iter(columns.values())))
    raw = pl.DataFrame(columns, schema={c: pl.String for c in columns}).with_columns(
        pl.lit("f.xlsx").alias("file_name"),
        pl.lit("0" * 64).alias("file_sha256"),
        pl.Series("row_number", range(2, n + 2), dtype=pl.Int64),
    )
    return canonical(raw, get(source), MONTH)


def test_two_digit_birth_years_are_of_the_last_century_when_not_of_this_one():
    out = canonical_rows(
        "maraudes",
        full_name=["DUPONT Jean"] * 4,
        event_date=["01/02/25", "03/02/25", "05/02/25", "07/02/25"],
        birth_date=["12/05/65", "12/05/24", "12/05/26", "12/05/1965"],
        situation=["Rue"] * 4,
    )
    assert out["birth_date"].to_list() == [
        date(1965, 5, 12),
        date(2024, 5, 12),  # a baby born last year
        date(1926, 5, 12),  # 2026 is still to come
        date(1965, 5, 12),
    ]
    assert out["event_date"].to_list() == [date(2025, 2, d) for d in (1, 3, 5, 7)]
    assert out["reasons"].to_list() == [[]] * 4


# ----------------------------------------------------------------- names and ages
@pytest.mark.parametrize(
    ("full", "last", "first"),
    [
        ("DE LA FONTAINE Marie-Claire", "DE LA FONTAINE", "Marie-Claire"),
        ("MARTIN Jean", "MARTIN", "Jean"),
        ("DUPONT PIERRE", "DUPONT", "PIERRE"),  # all upper case: the last word is the first name
        ("DE LA FONTAINE MARIE", "DE LA FONTAINE", "MARIE"),
        ("N'GUESSAN Adjoua", "N'GUESSAN", "Adjoua"),
        ("BEN SALAH Mohamed Ali", "BEN SALAH", "Mohamed Ali"),
        ("  MARTIN Jean ", "MARTIN", "Jean"),
        ("Diallo", "Diallo", None),
        # title or lower case: case does not end the last name, its particles do
        ("Da Costa Mai", "Da Costa", "Mai"),
        ("de la FONTAINE Marie", "de la FONTAINE", "Marie"),
        ("Ben Salah Mohamed Ali", "Ben Salah", "Mohamed Ali"),
        ("De La Fontaine", "De La Fontaine", None),
        ("Martin Paul", "Martin", "Paul"),
        ("Mai DA COSTA", "Mai", "DA COSTA"),  # first name first: a swap, as typed
    ],
)
def test_nom_prenom_in_one_column(full, last, first):
    last_expr, first_expr = split_full_name(pl.col("x"))
    out = pl.DataFrame({"x": [full]}).select(last_expr.alias("l"), first_expr.alias("f"))
    assert (out["l"][0], out["f"][0]) == (last, first)


def test_nom_prenom_fills_the_name_columns_in_canonical():
    out = canonical_rows(
        "maraudes",
        full_name=["DE LA FONTAINE Marie-Claire", None],
        event_date=["03/02/2025", "03/02/2025"],
        situation=["Rue", "Rue"],
    )
    assert out["last_name"].to_list() == ["DE LA FONTAINE", None]
    assert out["first_name"].to_list() == ["Marie-Claire", None]
    assert out["reasons"].to_list() == [[], ["no_identity"]]


@pytest.mark.parametrize(
    ("text", "age"),
    [("env. 45 ans", 45), ("~45", 45), ("45 ans", 45), ("45", 45), ("45.0", 45), ("3 ans", 3)],
)
def test_age_as_typed_by_outreach_teams(text, age):
    out = canonical_rows(
        "maraudes",
        full_name=["MARTIN Jean"],
        age=[text],
        event_date=["03/02/2025"],
        situation=["Rue"],
    )
    assert out["age"][0] == age and out["reasons"][0].to_list() == []


# ----------------------------------------------------------------- codes
@pytest.mark.parametrize(
    ("label", "code"),
    [
        ("20 - Sans abri / rue", "RUE"),  # SI-SIAO: the leading number is enough
        ("20", "RUE"),
        ("35 - Hôtel (115)", "HOTEL"),
        ("99 - Code inconnu", None),
    ],
)
def test_siao_codes_by_their_number(label, code):
    mapping = get("siao_insertion").values["situation"]
    out = pl.DataFrame({"s": [label]}).select(code_lookup(pl.col("s"), mapping))
    assert out["s"][0] == code


@pytest.mark.parametrize(
    ("label", "code"),
    [
        ("Hôtel 115", "HOTEL"),
        ("HOTEL 115", "HOTEL"),
        ("  hotel   115 ", "HOTEL"),
        ("Hotel-115", "HOTEL"),
    ],
)
def test_labels_match_whatever_case_accents_and_spacing(label, code):
    mapping = get("siao_urgence").values["situation"]
    assert pl.DataFrame({"s": [label]}).select(code_lookup(pl.col("s"), mapping))["s"][0] == code


def test_an_unused_column_title_is_kept_as_its_position_and_a_keyed_hash(tmp_path):
    """A title can be personal data ("Dupont Jean 06 12 34 56 78"): lineage never holds it."""
    from filekit import landing_folder, stage_file

    title = "Dupont Jean 06 12 34 56 78"
    sheet = [(1, URGENCE_HEADER + [title]), (2, URGENCE_ROWS[0] + ["x"])]
    write_xlsx(path := landing_folder(tmp_path, "siao_urgence") / "115.xlsx", sheet)
    (report,) = stage_file(path, "siao_urgence").files
    (kept,) = report.unmapped_headers
    assert kept.startswith("column 7 #") and "Dupont" not in kept and "06" not in kept
    write_xlsx(path, [(1, URGENCE_HEADER + [title.upper()]), (2, URGENCE_ROWS[1] + ["y"])])
    assert stage_file(path, "siao_urgence").files[0].unmapped_headers == [kept]  # drift is seen


def test_a_street_teams_own_reference_is_read_as_its_household_reference(tmp_path):
    # a team that notes the person's SI-SIAO number (a day centre, its member card): the same
    # number in a later month is evidence of the same person, as a provider's file number is
    header = ["Date de rencontre", "NOM Prénom", "Âge (estimé)", "Type de lieu", "N° SI-SIAO"]
    rows = [["03/02/2025", "DIALLO Aminata", "34", "Rue", "SI-004512"]]
    write_xlsx(path := tmp_path / "maraudes.xlsx", [(1, header), (2, rows[0])])
    raw = read_table(path, get("maraudes"))
    assert raw.headers["household_ref"] == "N° SI-SIAO" and raw.unmapped_headers == []
    assert raw.frame["household_ref"].to_list() == ["SI-004512"]
    write_xlsx(
        path := tmp_path / "accueil.xlsx",
        [
            (1, ["Date", "Nom", "Prénom", "Lieu de sommeil déclaré", "N° usager"]),
            (2, ["03/02/2025", "DIALLO", "Aminata", "Rue", "PASS-00012"]),
        ],
    )
    assert read_table(path, get("accueils_jour")).frame["household_ref"].to_list() == ["PASS-00012"]
