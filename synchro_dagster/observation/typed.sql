-- _typed (temporary, rebuilt for each month computed)
-- Grain: one row per staged record of `_staged` (some of the months delivered up to the month
-- computed), with the person its delivery month's linkage gave it (`link_person_id`).
-- Each record says one of: the household was without a home (kind 'homeless', with its
-- situation), it left to housing ('housed', with the kind of housing), it died ('deceased') or
-- left the territory ('left_territory'); or nothing usable ('unknown').
-- An exit row (a provider's list, a closed request) speaks for the exit date: its situation is
-- the destination, not the place left.
CREATE OR REPLACE TEMP TABLE _typed AS
WITH typed AS (
    SELECT
        s.*,
        CASE
            WHEN s.exit_date IS NOT NULL AND s.exit_destination IS NOT NULL THEN
                CASE
                    WHEN s.exit_destination LIKE 'housing_%' OR s.exit_destination = 'LOGE'
                        THEN 'housed'
                    WHEN s.exit_destination IN ('deceased', 'left_territory')
                        THEN s.exit_destination
                    WHEN s.exit_destination = 'INCONNU' THEN 'unknown'
                    ELSE 'homeless'
                END
            WHEN s.situation = 'LOGE' THEN 'housed'
            WHEN s.situation IS NULL OR s.situation = 'INCONNU' THEN 'unknown'
            ELSE 'homeless'
        END AS kind,
        CASE
            WHEN s.exit_date IS NULL THEN NULL
            WHEN s.exit_destination = 'housing_first' THEN 'housing_first'
            WHEN s.exit_destination LIKE 'housing_%' THEN replace(s.exit_destination, 'housing_', '')
        END AS exit_housing_kind,
        CASE
            WHEN s.programme = 'UN_CHEZ_SOI_DABORD' THEN 'housing_first'
            WHEN s.programme IN ('PENSION_DE_FAMILLE', 'RESIDENCE_SOCIALE') THEN 'adapted'
        END AS programme_housing_kind
    FROM _staged AS s
)
SELECT
    t.source,
    t.month AS delivery_month,
    t.file_sha256,
    t.row_number,
    l.person_id AS link_person_id,
    t.event_date AS evidence_date,
    t.kind,
    CASE
        WHEN t.kind = 'homeless' AND t.exit_date IS NOT NULL AND t.exit_destination IS NOT NULL
            THEN t.exit_destination
        WHEN t.kind = 'homeless' THEN t.situation
        WHEN t.kind = 'housed' THEN 'LOGE'
    END AS situation,
    CASE WHEN t.kind = 'housed'
        THEN coalesce(t.exit_housing_kind, t.programme_housing_kind, 'unknown') END AS housing_kind,
    r.situation_rank,
    t.record_token,
    t.sex,
    t.age_band,
    t.composition,
    t.household_size,
    t.need_type,
    t.need_status,
    t.need_since,
    t.request_fulfilled,
    t.exit_date,
    -- the answer this row reports, and when it was given
    CASE
        WHEN t.kind = 'housed' AND t.exit_housing_kind IN ('social', 'private') THEN 'housing_allocation'
        WHEN t.kind = 'housed' THEN 'adapted_housing'
        WHEN t.entry_date IS NOT NULL AND t.situation = 'LOG_TEMP' THEN 'adapted_housing'
        WHEN t.entry_date IS NOT NULL AND t.situation IN ('HEB_INSERTION', 'ASILE')
            THEN 'insertion_accommodation'
        WHEN t.entry_date IS NOT NULL AND t.situation IN ('MISE_ABRI', 'HOTEL') THEN 'shelter'
        WHEN t.request_fulfilled THEN 'shelter'
    END AS answer,
    CASE  -- a housing answer is given on the exit or entry date, not on each later listing
        WHEN t.kind = 'housed' THEN coalesce(t.exit_date, t.entry_date, t.event_date)
        WHEN t.entry_date IS NOT NULL
             AND t.situation IN ('LOG_TEMP', 'HEB_INSERTION', 'ASILE', 'MISE_ABRI', 'HOTEL')
            THEN t.entry_date
        WHEN t.request_fulfilled THEN t.event_date
    END AS answer_date
FROM typed AS t
JOIN identity.person_links AS l ON l.record_key = t.record_key AND l.month = t.month
JOIN _source_rank AS r ON r.source = t.source
