-- core.household_events
-- Grain: one row per household entering or leaving the stock (the active households) in the
-- month. stock(M) = stock(M-1) + inflows(M) - outflows(M), exactly, for every month.
-- Inflow types: 'newly_identified' (no record in the look-back before the month),
-- 'returned_from_housing' (its latest record before the month was an exit to housing),
-- 'returned_from_inactivity' (anything else: seen before, then lost from sight).
-- Outflow types: 'to_housing' (with housing_kind), 'deceased', 'left_territory' (a source says
-- so), 'to_inactivity' (no homelessness evidence for N days), 'duplicate_merged' (identity found
-- that two households of last month's stock are one: the other id goes on, see merged_into).
-- months_since_exit: for a return from housing, months since the month of that exit.
CREATE OR REPLACE TEMP TABLE _household_events AS
WITH previous AS (  -- last month's stock (_previous_stock: as stored, or as revised), under
    -- today's household ids
    SELECT p.household_id, coalesce(x.current_household_id, p.household_id) AS now_id
    FROM _previous_stock AS p
    LEFT JOIN _household_map AS x USING (household_id)
),
ranked AS (
    SELECT *, row_number() OVER (
        PARTITION BY now_id ORDER BY household_id = now_id DESC, household_id) AS k
    FROM previous
),
now AS (SELECT * FROM _household_months),
before AS (  -- the latest record before the month that said something, per household; as
    -- for the status, an exit stands against homelessness evidence of its own month
    SELECT household_id, kind, evidence_date
    FROM _evidence
    WHERE evidence_date < $month AND kind <> 'unknown'
    QUALIFY row_number() OVER (
        PARTITION BY household_id
        ORDER BY date_trunc('month', evidence_date) DESC, kind = 'homeless', evidence_date DESC,
            situation_rank, source, file_sha256, row_number) = 1
)
SELECT $month::DATE AS month, n.household_id, 'inflow' AS flow,
    CASE
        WHEN b.household_id IS NULL OR b.evidence_date < $lookback_start THEN 'newly_identified'
        WHEN b.kind = 'housed' THEN 'returned_from_housing'
        ELSE 'returned_from_inactivity'
    END AS type,
    NULL::VARCHAR AS housing_kind,
    NULL::BIGINT AS merged_into,
    CASE WHEN b.kind = 'housed' AND b.evidence_date >= $lookback_start
        THEN date_diff('month', date_trunc('month', b.evidence_date), $month::DATE)
    END::INTEGER AS months_since_exit
FROM now AS n
LEFT JOIN before AS b USING (household_id)
WHERE n.status = 'active' AND n.household_id NOT IN (SELECT now_id FROM previous)
UNION ALL
SELECT $month::DATE, r.household_id, 'outflow',
    CASE
        WHEN r.k > 1 THEN 'duplicate_merged'
        WHEN n.status = 'housed' THEN 'to_housing'
        WHEN n.status IN ('deceased', 'left_territory') THEN n.status
        ELSE 'to_inactivity'
    END,
    CASE WHEN r.k = 1 AND n.status = 'housed' THEN n.housing_kind END,
    CASE WHEN r.k > 1 THEN r.now_id END,
    NULL
FROM ranked AS r
LEFT JOIN now AS n ON n.household_id = r.now_id
WHERE r.k > 1 OR n.status IS DISTINCT FROM 'active'
