"""A warehouse staged before a token column was added is linked as it is: the column is added to
its staging tables, empty for the records staged without it."""

from __future__ import annotations

from pipelinekit import MONTHS, copy

from synchro_dagster import warehouse
from synchro_dagster.identity.persons import link_month
from synchro_dagster.settings import Settings

ADDED = ("tok_last_typo2", "tok_first_typo2")  # the forms two letters short, added since


def test_staging_tables_from_before_a_token_column_gain_it_and_the_month_links(ran, tmp_path):
    with warehouse.connect(Settings(data_dir=copy(ran, tmp_path)).warehouse_path) as conn:
        tables = warehouse.existing_tables(conn, "staging")
        for table in tables:
            for column in ADDED:
                conn.execute(f"ALTER TABLE {table} DROP COLUMN {column}")
        result = link_month(conn, MONTHS[2])
        staged = sum(
            conn.execute(f"SELECT count(*) FROM {t} WHERE month = ?", [MONTHS[2]]).fetchone()[0]
            for t in tables
        )
        assert result.links.height == staged > 0
        assert result.links["person_id"].null_count() == 0
        for table in tables:
            (filled,) = conn.execute(
                f"SELECT count({ADDED[0]}) + count({ADDED[1]}) FROM {table}"
            ).fetchone()
            assert filled == 0  # nothing made up for the records staged before
