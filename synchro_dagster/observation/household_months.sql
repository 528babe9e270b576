-- core.household_months
-- Grain: one row per household and month, for every household with at least one record dated
-- in the inactivity window [end of month - N days, end of month].
-- status: 'active' (without a home at the end of the month: homelessness evidence in the
-- window and no housing exit after it), 'housed', 'deceased', 'left_territory' (the latest
-- exit a source reported, not followed by homelessness evidence in a later month) or
-- 'inactive' (records in the window, none of them saying where the household sleeps).
-- situation: the one of the latest dated homelessness evidence in the window, the source's
-- situation_rank breaking same-day ties; when that source states it only broadly
-- (Source.broad_situations), the latest precise evidence of a situation it may stand for, earlier
-- in the window, says which; 'LOGE' when housed, 'INCONNU' otherwise.
CREATE OR REPLACE TEMP TABLE _household_months AS
WITH in_window AS (
    SELECT * FROM _evidence WHERE evidence_date BETWEEN $window_start AND $month_end
),
households AS (SELECT DISTINCT household_id FROM in_window),
history AS (
    SELECT e.* FROM _evidence AS e SEMI JOIN households AS h USING (household_id)
    WHERE e.evidence_date <= $month_end
),
latest AS (  -- the latest homelessness evidence in the window
    SELECT household_id, source, situation, evidence_date
    FROM in_window WHERE kind = 'homeless'
    QUALIFY row_number() OVER (
        PARTITION BY household_id
        ORDER BY evidence_date DESC, situation_rank, source, file_sha256, row_number) = 1
),
refined AS (  -- a broad latest situation, made precise by the latest precise one before it
    SELECT l.household_id, e.situation
    FROM latest AS l
    JOIN _broad_situations AS b ON b.source = l.source AND b.situation = l.situation
    JOIN in_window AS e ON e.household_id = l.household_id AND e.kind = 'homeless'
        AND e.situation = b.precise AND e.evidence_date <= l.evidence_date
    WHERE NOT EXISTS (
        SELECT 1 FROM _broad_situations AS x WHERE x.source = e.source AND x.situation = e.situation)
    QUALIFY row_number() OVER (
        PARTITION BY l.household_id
        ORDER BY e.evidence_date DESC, e.situation_rank, e.source, e.file_sha256, e.row_number) = 1
),
homeless AS (
    SELECT l.household_id, coalesce(r.situation, l.situation) AS situation, l.evidence_date
    FROM latest AS l LEFT JOIN refined AS r USING (household_id)
),
homeless_ever AS (  -- the latest homelessness evidence at all, up to the month's end
    SELECT household_id, max(evidence_date) AS evidence_date
    FROM history WHERE kind = 'homeless' GROUP BY household_id
),
exits AS (  -- the latest exit from homelessness any source reported, up to the month's end
    SELECT household_id, kind, housing_kind, evidence_date
    FROM history WHERE kind IN ('housed', 'deceased', 'left_territory')
    QUALIFY row_number() OVER (
        PARTITION BY household_id
        ORDER BY evidence_date DESC, situation_rank, source, file_sha256, row_number) = 1
),
composition AS (  -- the latest composition a source gave
    SELECT household_id, composition
    FROM history WHERE composition IS NOT NULL
    QUALIFY row_number() OVER (
        PARTITION BY household_id
        ORDER BY evidence_date DESC, situation_rank, source, file_sha256, row_number) = 1
),
declared_size AS (  -- the latest household size a source gave, in the window
    SELECT household_id, household_size
    FROM in_window WHERE household_size IS NOT NULL
    QUALIFY row_number() OVER (
        PARTITION BY household_id
        ORDER BY evidence_date DESC, situation_rank, source, file_sha256, row_number) = 1
),
person_bands AS (  -- each current member's latest known age band and sex
    SELECT m.household_id, m.person_id, b.age_band, x.sex
    FROM _members AS m SEMI JOIN households AS h USING (household_id)
    LEFT JOIN (
        SELECT person_id, age_band FROM history WHERE age_band IS NOT NULL
        QUALIFY row_number() OVER (
            PARTITION BY person_id
            ORDER BY evidence_date DESC, situation_rank, source, file_sha256, row_number) = 1
    ) AS b USING (person_id)
    LEFT JOIN (
        SELECT person_id, sex FROM history WHERE sex IS NOT NULL
        QUALIFY row_number() OVER (
            PARTITION BY person_id
            ORDER BY evidence_date DESC, situation_rank, source, file_sha256, row_number) = 1
    ) AS x USING (person_id)
),
members AS (
    SELECT
        household_id,
        count(*) AS members,
        count(*) FILTER (age_band = '0-17') AS age_0_17,
        count(*) FILTER (age_band = '18-24') AS age_18_24,
        count(*) FILTER (age_band = '25-34') AS age_25_34,
        count(*) FILTER (age_band = '35-44') AS age_35_44,
        count(*) FILTER (age_band = '45-54') AS age_45_54,
        count(*) FILTER (age_band = '55-64') AS age_55_64,
        count(*) FILTER (age_band = '65+') AS age_65_plus,
        count(*) FILTER (age_band IS NULL) AS age_unknown,
        -- a household of one no source described: its composition follows from the person
        CASE WHEN count(*) = 1 THEN CASE
            WHEN any_value(age_band) = '0-17' THEN 'mineur_isole'
            WHEN any_value(sex) = 'M' THEN 'homme_seul'
            WHEN any_value(sex) = 'F' THEN 'femme_seule'
        END END AS composition_of_one
    FROM person_bands GROUP BY household_id
),
seen AS (
    SELECT
        household_id,
        min(delivery_month) AS first_month_seen,
        list(DISTINCT source ORDER BY source) FILTER (delivery_month = $month) AS sources
    FROM history GROUP BY household_id
),
needs AS (  -- per need type, the latest record delivered in the window's months
    SELECT household_id, need_type, need_status, exit_date, need_since, delivery_month,
        request_fulfilled
    FROM history
    WHERE need_type IS NOT NULL AND delivery_month >= $window_first_month
    QUALIFY row_number() OVER (
        PARTITION BY household_id, need_type
        ORDER BY delivery_month DESC, evidence_date DESC, source, file_sha256, row_number) = 1
),
open_needs AS (
    SELECT household_id,
        list(need_type ORDER BY need_type) AS open_needs,
        min(need_since) FILTER (need_type IN ('syplo', 'dalo')) AS priority_since
    FROM needs
    WHERE (need_type = 'urgence' AND delivery_month = $month)
       OR (need_type <> 'urgence' AND need_status IN ('open', 'recognised') AND exit_date IS NULL)
    GROUP BY household_id
),
answered AS (  -- need types whose request got its answer this month
    SELECT household_id, list(DISTINCT need_type ORDER BY need_type) AS needs_answered
    FROM history
    WHERE delivery_month = $month AND need_type IS NOT NULL AND answer IS NOT NULL
      AND answer_date BETWEEN $month AND $month_end
    GROUP BY household_id
),
answers AS (
    SELECT household_id, list(DISTINCT answer ORDER BY answer) AS answers
    FROM history WHERE answer_date BETWEEN $month AND $month_end
    GROUP BY household_id
),
urgence AS (  -- 115 requests of the month (a request lists each person: counted once)
    SELECT household_id,
        count(DISTINCT coalesce(record_token, file_sha256 || ':' || row_number))
            AS urgence_requests,
        count(DISTINCT coalesce(record_token, file_sha256 || ':' || row_number))
            FILTER (NOT request_fulfilled) AS urgence_not_fulfilled
    FROM history WHERE need_type = 'urgence' AND delivery_month = $month
    GROUP BY household_id
),
status AS (
    SELECT
        h.household_id,
        CASE
            -- an exit stands unless homelessness evidence of a later month follows it
            WHEN x.household_id IS NOT NULL AND (
                he.household_id IS NULL
                OR date_trunc('month', he.evidence_date) <= date_trunc('month', x.evidence_date))
                THEN x.kind
            WHEN hl.household_id IS NOT NULL THEN 'active'
            ELSE 'inactive'
        END AS status,
        hl.situation AS homeless_situation,
        x.housing_kind, x.evidence_date AS exit_date
    FROM households AS h
    LEFT JOIN homeless AS hl USING (household_id)
    LEFT JOIN homeless_ever AS he USING (household_id)
    LEFT JOIN exits AS x USING (household_id)
)
SELECT
    $month::DATE AS month,
    s.household_id,
    s.status,
    CASE s.status WHEN 'active' THEN s.homeless_situation WHEN 'housed' THEN 'LOGE'
        ELSE 'INCONNU' END AS situation,
    CASE WHEN s.status = 'active' THEN CASE s.homeless_situation
        WHEN 'RUE' THEN '1' WHEN 'MISE_ABRI' THEN '2' WHEN 'HOTEL' THEN '2'
        WHEN 'HEB_INSERTION' THEN '3' WHEN 'LOG_TEMP' THEN '3' WHEN 'ASILE' THEN '3 (asile)'
        WHEN 'INSTITUTION' THEN '4' WHEN 'SQUAT' THEN '5' WHEN 'TIERS' THEN '6' END
    END AS ethos,
    coalesce(
        c.composition,
        CASE WHEN coalesce(d.household_size, 1) = 1 THEN m.composition_of_one END,
        'inconnue'
    ) AS composition,
    coalesce(d.household_size, m.members, 1)::INTEGER AS persons,
    coalesce(m.age_0_17, 0)::INTEGER AS age_0_17,
    coalesce(m.age_18_24, 0)::INTEGER AS age_18_24,
    coalesce(m.age_25_34, 0)::INTEGER AS age_25_34,
    coalesce(m.age_35_44, 0)::INTEGER AS age_35_44,
    coalesce(m.age_45_54, 0)::INTEGER AS age_45_54,
    coalesce(m.age_55_64, 0)::INTEGER AS age_55_64,
    coalesce(m.age_65_plus, 0)::INTEGER AS age_65_plus,
    coalesce(m.age_unknown, 0)::INTEGER AS age_unknown,
    f.first_month_seen,
    date_diff('month', f.first_month_seen, $month::DATE)::INTEGER AS months_since_first_seen,
    coalesce(f.sources, []) AS sources,
    coalesce(o.open_needs, []) AS open_needs,
    coalesce(a.needs_answered, []) AS needs_answered,
    coalesce(an.answers, []) AS answers,
    coalesce(u.urgence_requests, 0)::INTEGER AS urgence_requests,
    coalesce(u.urgence_not_fulfilled, 0)::INTEGER AS urgence_not_fulfilled,
    o.priority_since,
    CASE WHEN s.status IN ('housed', 'deceased', 'left_territory') THEN s.exit_date END
        AS exit_date,
    CASE WHEN s.status = 'housed' THEN s.housing_kind END AS housing_kind
FROM status AS s
LEFT JOIN composition AS c USING (household_id)
LEFT JOIN members AS m USING (household_id)
LEFT JOIN declared_size AS d USING (household_id)
LEFT JOIN seen AS f USING (household_id)
LEFT JOIN open_needs AS o USING (household_id)
LEFT JOIN answered AS a USING (household_id)
LEFT JOIN answers AS an USING (household_id)
LEFT JOIN urgence AS u USING (household_id)
