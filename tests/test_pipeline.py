"""End to end through Dagster on a small simulated territory: what lands, is kept, or leaks."""

from __future__ import annotations

import hashlib
import re
import zipfile
from datetime import date
from pathlib import Path

import dagster as dg
import duckdb
import openpyxl
import polars as pl
import pytest
from pipelinekit import KEY, MONTHS, copy, run

from synchro_dagster import warehouse
from synchro_dagster.cli import run_months
from synchro_dagster.defs import build_definitions
from synchro_dagster.defs.publish import FEEDBACK
from synchro_dagster.indicators.build import balance_holds, parts_mismatches, stock_balance
from synchro_dagster.ingest.stage import stage_month
from synchro_dagster.ingest.store import write_source_month
from synchro_dagster.observation.checks import (
    duplicate_household_months,
    untraced_household_months,
)
from synchro_dagster.observation.lineage import LINEAGE
from synchro_dagster.publish.feedback import feedback_path
from synchro_dagster.publish.snapshot import publish_snapshot, snapshot_tables
from synchro_dagster.settings import Settings
from synchro_dagster.sources import get


def query(data: Path, sql: str, params: list | None = None) -> list[tuple]:
    with duckdb.connect(str(data / "warehouse" / "synchro.duckdb"), read_only=True) as conn:
        return conn.execute(sql, params or []).fetchall()


def staged_counts(data: Path) -> dict[tuple[str, date], int]:
    rows = query(data, "SELECT source, month, sum(rows_staged) FROM lineage.files GROUP BY ALL")
    return {(s, m): n for s, m, n in rows}


def test_every_delivered_row_is_staged_or_quarantined_and_only_broken_rows_are_quarantined(ran):
    truth = pl.read_parquet(ran / "truth" / "records.parquet")
    quarantined = set()
    for source in truth["source"].unique():
        quarantined |= set(query(ran, f"SELECT file_name, row_number FROM quarantine.{source}"))
    broken = set(
        truth.filter(pl.col("defect").is_not_null()).select("file", "row_number").iter_rows()
    )
    assert quarantined == broken
    staged = sum(staged_counts(ran).values())
    assert staged + len(quarantined) == truth.height


def test_staged_rows_point_at_the_truths_rows(ran):
    truth = pl.read_parquet(ran / "truth" / "records.parquet").filter(
        pl.col("source") == "hebergement", pl.col("defect").is_null()
    )
    staged = query(
        ran,
        "SELECT f.file_name, s.row_number FROM staging.hebergement s "
        "JOIN lineage.files f ON f.sha256 = s.file_sha256",
    )
    assert set(staged) == set(truth.select("file", "row_number").iter_rows())


def _sample_identities(data: Path) -> tuple[list[str], list[str]]:
    persons = pl.read_parquet(data / "truth" / "persons.parquet")
    last = pl.concat([persons["birth_last_name"], persons["usage_last_name"]]).drop_nulls()
    last = last.unique().to_list()
    first = persons["first_name"].unique().to_list()
    # long enough not to occur by chance in code, paths or partner labels
    words = sorted({n for n in last + first if len(n) >= 6})
    births = persons["birth_date"].to_list()
    dates = [d.strftime(f) for d in births[:300] for f in ("%d/%m/%Y", "%Y-%m-%d")]
    return words, dates


def _readable(path: Path) -> bytes:
    """What a reader of the file sees: the members of an xlsx (a zip), a PDF's text, a
    Parquet file's values; other files as they are."""
    if path.suffix == ".xlsx":
        with zipfile.ZipFile(path) as book:
            return b"\n".join(book.read(name) for name in book.namelist())
    if path.suffix == ".pdf":
        import pypdfium2

        pdf = pypdfium2.PdfDocument(path)
        return "\n".join(page.get_textpage().get_text_range() for page in pdf).encode()
    if path.suffix == ".parquet":
        return pl.read_parquet(path).write_csv().encode()
    return path.read_bytes()


def test_no_cleartext_name_or_birth_date_anywhere_under_data(ran):
    words, dates = _sample_identities(ran)
    assert len(words) > 100 and len(dates) > 200
    needles = [w.encode() for w in words] + [w.upper().encode() for w in words]
    needles += [d.encode() for d in dates]
    scanned, kinds = 0, set()
    for path in ran.rglob("*"):
        rel = path.relative_to(ran).parts
        if not path.is_file() or rel[0] in ("landing", "truth", "secrets"):
            continue  # the partners' own files, the simulator's truth, the key
        blob = _readable(path)
        scanned += 1
        kinds.add(path.suffix)
        hits = [n.decode() for n in needles if n in blob]
        assert not hits, f"{path.relative_to(ran)} contains cleartext identity ({len(hits)} hits)"
    assert scanned >= 3  # the warehouse, the Dagster run and event storage at least
    assert {".xlsx", ".pdf", ".parquet", ".html", ".csv"} <= kinds  # published files read too
    # DuckDB may compress strings on disk: ask it too, column by column
    tables = query(
        ran,
        "SELECT table_schema, table_name, column_name FROM "
        "information_schema.columns WHERE data_type = 'VARCHAR'",
    )
    upper = {w.upper() for w in words}
    for schema, table, column in tables:
        values = {v for (v,) in query(ran, f'SELECT DISTINCT "{column}" FROM {schema}.{table}')}
        assert not {str(v).upper() for v in values if v is not None} & upper, (
            schema,
            table,
            column,
        )


def test_rerun_of_the_same_files_changes_nothing(ran):
    before = staged_counts(ran)
    files_before = query(ran, "SELECT file_name, sha256, run_id FROM lineage.files ORDER BY 1")
    assert run(ran, MONTHS) == 0
    assert staged_counts(ran) == before
    assert (
        query(ran, "SELECT file_name, sha256, run_id FROM lineage.files ORDER BY 1") == files_before
    )


def test_changed_redelivery_replaces_the_month(ran, tmp_path):
    data = copy(ran, tmp_path)
    path = next((data / "landing" / "2025-02" / "hebergement").glob("chrs_*.xlsx"))
    wb = openpyxl.load_workbook(path)
    ws = wb.active
    header = next(r for r in range(1, 15) if ws.cell(r, 1).value == "Numéro de ménage")
    ws.delete_rows(header + 1, 5)  # the provider corrects its list: five rows fewer
    wb.save(path)

    def read_and_staged() -> tuple[int, int]:
        return query(
            data,
            "SELECT sum(rows_read), sum(rows_staged) FROM lineage.files "
            "WHERE source = 'hebergement' AND month = ?",
            [MONTHS[1]],
        )[0]

    read_before, _ = read_and_staged()
    stock_before = _stocks(data)
    assert run(data, MONTHS[1:]) == 0  # `synchro run --months 2025-02:`
    read_after, staged_after = read_and_staged()
    assert read_after == read_before - 5
    assert (
        query(data, "SELECT count(*) FROM staging.hebergement WHERE month = ?", [MONTHS[1]])[0][0]
        == staged_after
    )
    assert query(
        data,
        "SELECT count(DISTINCT file_sha256) FROM staging.hebergement WHERE month = ?",
        [MONTHS[1]],
    )[0][0] == len(list((data / "landing" / "2025-02" / "hebergement").glob("*.xlsx")))
    assert (
        staged_counts(data)[("hebergement", MONTHS[0])]
        == staged_counts(ran)[("hebergement", MONTHS[0])]
    )
    # the month and the one after it were recomputed, and still reconcile
    with duckdb.connect(str(data / "warehouse" / "synchro.duckdb"), read_only=True) as conn:
        assert all(balance_holds(stock_balance(conn, m)) for m in MONTHS)
    assert _stocks(data)[MONTHS[0]] == stock_before[MONTHS[0]]


def _stocks(data: Path) -> dict[date, float]:
    return dict(
        query(
            data,
            "SELECT month, value FROM marts.indicators WHERE indicator = 'stock_households' "
            "AND dimension IS NULL",
        )
    )


def test_every_month_obeys_the_domain_rules(ran):
    with duckdb.connect(str(ran / "warehouse" / "synchro.duckdb"), read_only=True) as conn:
        for month in MONTHS:
            figures = stock_balance(conn, month)
            assert balance_holds(figures), (month, figures)
            assert parts_mismatches(conn, month) == []
            assert duplicate_household_months(conn, month) == 0
            assert untraced_household_months(conn, month) == 0
    stocks = _stocks(ran)
    assert sorted(stocks) == MONTHS and all(v > 100 for v in stocks.values())
    types = {t for (t,) in query(ran, "SELECT DISTINCT type FROM core.household_events")}
    assert {"newly_identified", "to_housing"} <= types


def test_every_table_is_the_one_its_ddl_declares(ran):
    actual = query(
        ran,
        "SELECT table_schema || '.' || table_name, list(column_name || ' ' || data_type "
        "ORDER BY ordinal_position) FROM information_schema.columns GROUP BY 1",
    )
    present = {name for name, _ in actual}
    assert present <= {t.name for t in warehouse.catalogue()}  # every table written is declared
    # lineage.* and privacy.* (the first rights request writes it) are not all made by a run
    assert {t for t in warehouse.TABLES if not t.startswith(("lineage", "privacy"))} < present
    for name, columns in actual:
        assert columns == [f"{c.name} {c.type}" for c in warehouse.table(name).columns], name
    for table, lineage in LINEAGE.items():  # Dagster's column lineage names real columns
        assert list(lineage) == [c.name for c in warehouse.table(table).columns], table


def test_runs_appear_under_their_code_location_and_checks_under_their_month(ran):
    import dagster as dg
    from dagster._core.storage.tags import REPOSITORY_LABEL_TAG

    from synchro_dagster.defs.launch import LOCATION, REPOSITORY

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DAGSTER_HOME", str(ran / "dagster_home"))
        instance = dg.DagsterInstance.get()
        runs = instance.get_runs(dg.RunsFilter(job_name="monthly_job"))
        # the filter the UI's job page uses: the job's runs in its code location
        label = {REPOSITORY_LABEL_TAG: f"{REPOSITORY}@{LOCATION}"}
        shown = instance.get_runs(dg.RunsFilter(job_name="monthly_job", tags=label))
        assert len(runs) >= len(MONTHS) and [r.run_id for r in shown] == [r.run_id for r in runs]
        assert {r.remote_job_origin.location_name for r in runs} == {LOCATION}
        assert {r.tags["dagster/partition"] for r in runs} == {f"{m:%Y-%m}" for m in MONTHS}
        key = dg.AssetCheckKey(dg.AssetKey(["marts", "indicators"]), "stock_balance")
        history = instance.event_log_storage.get_asset_check_execution_history(key, limit=100)
        evaluated = {r.event.dagster_event.event_specific_data.partition for r in history}
        assert evaluated == {f"{m:%Y-%m}" for m in MONTHS}
        # identity's progress, in the run's log as the UI shows it: counts and seconds only
        last = next(r for r in runs if r.tags["dagster/partition"] == f"{MONTHS[-1]:%Y-%m}")
        said = [
            r.user_message
            for r in instance.all_logs(last.run_id)
            if r.user_message.startswith(f"identity {MONTHS[-1]:%Y-%m}: ")
        ]
        if said and said[0].startswith(f"identity {MONTHS[-1]:%Y-%m}: model estimated on"):
            said = said[1:]  # the month the records doubled
        shapes = [
            r"scoring \d+ records of the month against \d+ known spellings",
            r"\d+ likely pairs \(\d+ s so far\); forming persons",
            r"\d+ persons created, \d+ merged; households formed \(\d+ s\)",
        ]
        assert len(said) == len(shapes)
        for message, shape in zip(said, shapes, strict=True):
            assert re.fullmatch(shape, message.split(": ", 1)[1]), message
        instance.dispose()


def test_a_figure_traces_to_partner_files_with_one_query(ran):
    rows = query(
        ran,
        """
        SELECT f.source, f.file_name, count(DISTINCT p.household_id) AS households,
               count(*) AS records
        FROM core.household_months AS h
        JOIN core.provenance AS p USING (month, household_id)
        JOIN lineage.files AS f ON f.sha256 = p.file_sha256 AND f.source = p.source
        WHERE h.month = DATE '2025-03-01' AND h.status = 'active' AND h.situation = 'RUE'
        GROUP BY ALL ORDER BY households DESC
        """,
    )
    assert rows and all((ran / "landing" / name).is_file() for _, name, _, _ in rows)
    traced = query(
        ran,
        "SELECT count(DISTINCT household_id) FROM core.provenance JOIN core.household_months "
        "USING (month, household_id) WHERE month = DATE '2025-03-01' AND status = 'active' "
        "AND situation = 'RUE'",
    )[0][0]
    published = query(
        ran,
        "SELECT value FROM marts.indicators WHERE month = DATE '2025-03-01' "
        "AND indicator = 'stock_households' AND dimension = 'situation=RUE'",
    )[0][0]
    assert traced == published


def test_the_analyst_snapshot_has_no_token_and_never_blocks_the_pipeline(ran, tmp_path):
    data = copy(ran, tmp_path)
    snapshot = data / "published" / "analytics.duckdb"
    assert snapshot.stat().st_mode & 0o777 == 0o440
    with duckdb.connect(str(snapshot), read_only=True) as analyst:
        tables = analyst.execute(
            "SELECT table_schema || '.' || table_name FROM information_schema.tables"
        ).fetchall()
        assert sorted(t for (t,) in tables) == sorted(t.name for t in snapshot_tables())
        columns = [
            c
            for (c,) in analyst.execute(
                "SELECT column_name FROM information_schema.columns"
            ).fetchall()
        ]
        assert not [c for c in columns if c.startswith("tok_") or c.endswith("_token")]
        before = analyst.execute("SELECT count(*) FROM marts.indicators").fetchall()
        # the pipeline refreshes the snapshot while the analyst holds it open
        with duckdb.connect(str(data / "warehouse" / "synchro.duckdb")) as conn:
            conn.execute("DELETE FROM marts.indicators WHERE month = ?", [MONTHS[-1]])
            counts = publish_snapshot(conn, snapshot)
        assert analyst.execute("SELECT count(*) FROM marts.indicators").fetchall() == before
    with duckdb.connect(str(snapshot), read_only=True) as fresh:
        after = fresh.execute("SELECT count(*) FROM marts.indicators").fetchall()[0][0]
    assert after == counts["marts.indicators"] < before[0][0]


def test_a_bad_file_fails_its_source_month_keeps_its_previous_state_spares_the_others_and_tells_its_partner(  # noqa: E501
    ran, tmp_path, capsys
):
    data = copy(ran, tmp_path)
    previous = query(
        data, "SELECT count(*), min(file_sha256) FROM staging.sne WHERE month = ?", [MONTHS[1]]
    )
    path = next((data / "landing" / "2025-02" / "sne").glob("*.csv"))
    original = path.read_bytes()
    text = path.read_text(encoding="cp1252").splitlines()
    path.write_text(
        "\n".join([text[0].replace("NOM;", "NOM_FAMILLE;")] + text[1:]), encoding="cp1252"
    )  # the required column NOM renamed
    maraudes = next((data / "landing" / "2025-02" / "maraudes").glob("*.xlsx"))
    wb = openpyxl.load_workbook(maraudes)
    ws = wb["Rencontres"]
    ws.cell(20, 3).value = "NOUVEAU Contact"  # another source changes too
    ws.delete_cols(5)  # its birth dates are no longer exported
    ws.cell(5, ws.max_column + 1).value = "Contact DUPONT 0612345678"  # a column titled by a person
    wb.save(maraudes)
    assert run(data, [MONTHS[1]]) == 1
    err = capsys.readouterr().err
    assert "sne_demandes_21_2025-02.csv" in err and "« NOM »" in err and "What to do" in err
    assert (
        query(
            data, "SELECT count(*), min(file_sha256) FROM staging.sne WHERE month = ?", [MONTHS[1]]
        )
        == previous
    )
    new_sha = query(
        data,
        "SELECT sha256 FROM lineage.files WHERE source = 'maraudes' AND month = ?",
        [MONTHS[1]],
    )[0][0]
    assert new_sha == hashlib.sha256(maraudes.read_bytes()).hexdigest()

    # the partner whose file was refused gets its feedback all the same: which file, why, what to do
    assert query(data, "SELECT source, file_name, problem, column_title FROM lineage.refusals") == [
        ("sne", "2025-02/sne/sne_demandes_21_2025-02.csv", "missing_column", "NOM")
    ]
    feedback = data / "published" / "feedback"
    sne = openpyxl.load_workbook(feedback_path(feedback, "sne", MONTHS[1]))
    refused = list(sne["Fichiers refusés"].iter_rows(min_row=2, values_only=True))
    assert refused == [
        (
            "sne_demandes_21_2025-02.csv",
            "La colonne obligatoire « NOM » est absente.",
            "Remettez la colonne avec son titre habituel « NOM ».",
        )
    ]
    received = sorted(r[::2] for r in sne["Fichiers reçus"].iter_rows(min_row=2, values_only=True))
    assert [(name, status) for name, status, *_ in received] == [
        ("sne_demandes_21_2025-02.csv", "refusé"),  # the new file; the one staged before stays
        (
            "sne_demandes_21_2025-02.csv",
            "version précédente, toujours en vigueur (la nouvelle a été refusée)",
        ),
    ]
    to_do = [r[1] for r in sne["Synthèse"].iter_rows(values_only=True) if r[0] == "1."]
    assert to_do and to_do[0].startswith("Renvoyer « sne_demandes_21_2025-02.csv »")
    # the other partner hears of its changed columns, never of the title of the new one
    columns = openpyxl.load_workbook(feedback_path(feedback, "maraudes", MONTHS[1]))["Colonnes"]
    changes = dict(columns.iter_rows(min_row=2, values_only=True))
    assert changes.pop("Date de naissance") == "absente"
    assert [v for v in changes.values()] == ["nouvelle, non utilisée"]
    assert re.fullmatch(r"colonne 10 \(titre non conservé, empreinte \w{8}\)", next(iter(changes)))
    for workbook in feedback.rglob("*.xlsx"):
        for sheet in openpyxl.load_workbook(workbook):
            cells = " ".join(str(v) for row in sheet.iter_rows(values_only=True) for v in row)
            assert "DUPONT" not in cells and "0612345678" not in cells
    # in the Dagster UI: the feedback run of the failed month, counts only; and the sensor that
    # asks for it when a monthly run fails
    instance = dg.DagsterInstance.get()
    [failed] = instance.get_runs(dg.RunsFilter(job_name="monthly_job"))
    # the refused source-month's check says why in the UI, though the asset wrote nothing
    [refusal] = [
        e.event_log_entry.dagster_event.event_specific_data
        for e in instance.get_records_for_run(
            failed.run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION
        ).records
        if e.event_log_entry.dagster_event.event_specific_data.asset_key
        == dg.AssetKey(["staging", "sne"])
    ]
    assert (refusal.check_name, refusal.passed, refusal.partition) == (
        "schema_valid",
        False,
        "2025-02",
    )
    assert refusal.metadata["problem"].value == "missing_column"
    assert refusal.metadata["column"].value == "NOM"
    assert "staging keeps the previous delivery" in refusal.metadata["note"].value
    [written] = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=FEEDBACK, asset_partitions=["2025-02"]), limit=1
    ).records
    metadata = written.asset_materialization.metadata
    assert metadata["sources_with_a_refused_file"].value == 1 and metadata["workbooks"].value == 9
    assert "DUPONT" not in str(metadata)
    sensor = next(
        s
        for s in build_definitions(Settings.from_env(data)).sensors
        if s.name == "partner_feedback_after_failed_monthly_run"
    )
    [event] = instance.get_records_for_run(
        failed.run_id, of_type=dg.DagsterEventType.RUN_FAILURE
    ).records
    request = sensor(
        dg.build_run_status_sensor_context(
            sensor_name=sensor.name,
            dagster_event=event.event_log_entry.dagster_event,
            dagster_instance=instance,
            dagster_run=failed,
        )
    )
    assert request.partition_key == "2025-02"

    # the partner sends the file again, fixed: the refusal is over
    path.write_bytes(original)
    key = KEY.encode()
    result = stage_month(data / "landing", get("sne"), MONTHS[1], key)
    with warehouse.connect(data / "warehouse" / "synchro.duckdb") as conn:
        write_source_month(conn, result, "test")
    assert query(data, "SELECT count(*) FROM lineage.refusals") == [(0,)]


def test_missing_key_stops_the_run_and_says_how_to_set_one(ran, tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("SYNCHRO_PSEUDONYMISATION_KEY", raising=False)
    monkeypatch.setenv("SYNCHRO_PSEUDONYMISATION_KEY_FILE", str(tmp_path / "absent.key"))
    assert run_months(ran, MONTHS) == 1
    err = capsys.readouterr().err
    assert "SYNCHRO_PSEUDONYMISATION_KEY" in err and "secrets.token_hex" in err


def test_identity_train_saves_a_model_with_its_provenance(ran, tmp_path):
    import json

    from synchro_dagster.cli import main

    model = tmp_path / "model.json"
    assert main(["identity", "train", "--data-dir", str(ran), "--model", str(model)]) == 0
    saved = json.loads(model.read_text())
    staged = sum(staged_counts(ran).values())
    assert saved["synchro"]["records"] == staged
    assert saved["synchro"]["command"] == "synchro identity train"
    levels = {c["output_column_name"]: c["comparison_levels"] for c in saved["comparisons"]}
    assert set(levels) == {
        "last_name",
        "first_name",
        "birth_date",
        "sex",
        "age_band",
        "partner_household",
    }
    exact_dob = next(
        lv
        for lv in levels["birth_date"]
        if lv.get("label_for_charts", "").startswith("Exact match")
    )
    assert exact_dob["m_probability"] > 10 * exact_dob["u_probability"]  # it learned something


def test_a_run_with_another_key_is_refused_at_once_and_changes_nothing(ran, capsys, monkeypatch):
    """Tokens under another key link to no one: the run must not start (issue 14, §5)."""
    path = ran / "warehouse" / "synchro.duckdb"
    with warehouse.read_only(path) as conn:
        before = conn.execute("SELECT count(*) FROM identity.person_links").fetchall()
    monkeypatch.setenv("SYNCHRO_PSEUDONYMISATION_KEY", "another-key-" + "fedcba9876543210" * 3)
    assert run_months(ran, MONTHS) == 1
    err = capsys.readouterr().err
    assert "another pseudonymisation key" in err and "Nothing was read or written" in err
    with warehouse.read_only(path) as conn:
        assert conn.execute("SELECT count(*) FROM identity.person_links").fetchall() == before
        assert conn.execute("SELECT count(*) FROM lineage.key_fingerprint").fetchall() == [(1,)]


def test_person_level_files_are_their_owners_only(ran):
    """The warehouse, the Dagster home and the key are not readable by other users."""
    import stat

    def mode(path: Path) -> int:
        return stat.S_IMODE(path.stat().st_mode)

    assert mode(ran / "warehouse" / "synchro.duckdb") == 0o600
    assert mode(ran / "warehouse") == 0o700
    assert mode(ran / "dagster_home") == 0o700


def test_a_data_directory_whose_path_holds_a_quote_publishes_its_snapshot(ran, tmp_path):
    target = tmp_path / "l'observatoire" / "analytics.duckdb"
    with duckdb.connect(str(ran / "warehouse" / "synchro.duckdb")) as conn:  # as the asset does
        counts = publish_snapshot(conn, target)
    assert target.exists() and counts["marts.indicators"] > 0
