-- core.provenance
-- Grain: one row per household-month and staged record behind it: every record dated in the
-- month's inactivity window, with the partner file (sha256, see lineage.files) and its row
-- number as the partner sees it. Any figure traces back to files with one join.
CREATE OR REPLACE TEMP TABLE _provenance AS
SELECT $month::DATE AS month, household_id, source, file_sha256, row_number, evidence_date, kind
FROM _evidence
WHERE evidence_date BETWEEN $window_start AND $month_end
