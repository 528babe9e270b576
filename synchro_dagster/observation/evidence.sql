-- _evidence (temporary, rebuilt for each month computed)
-- Grain: one row per staged record of a household with a record dated in the month's
-- inactivity window (the only households the month's tables describe), attributed to the
-- household its person belongs to as identity knows it at the end of the month: every record
-- of the months from the window's first (`_typed`), and of the months before it those that
-- can still decide a figure (`_kept`). See typed.sql for what each record says.
CREATE OR REPLACE TEMP TABLE _evidence AS
WITH linked AS (
    SELECT
        x.source,
        x.delivery_month,
        x.file_sha256,
        x.row_number,
        m.household_id,
        p.current_person_id AS person_id,
        x.* EXCLUDE (source, delivery_month, file_sha256, row_number, link_person_id)
    FROM (SELECT * FROM _typed UNION ALL BY NAME SELECT * FROM _kept) AS x
    JOIN _persons_now AS p ON p.link_month = x.delivery_month AND p.person_id = x.link_person_id
    JOIN _members AS m ON m.person_id = p.current_person_id
),
in_window AS (
    SELECT DISTINCT household_id FROM linked
    WHERE evidence_date BETWEEN $window_start AND $month_end
)
SELECT * FROM linked SEMI JOIN in_window USING (household_id)
