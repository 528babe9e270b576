-- marts.indicators
-- Grain: one row per month, indicator and dimension (null for the total, otherwise
-- 'name=value'). Definitions: marts.indicator_definitions (docs/indicators.md).
-- Every total exists, at 0 when nothing was counted; coverage lists every source, at 0 too.
-- Reads the month's household-months and events as _month_households and _month_events
-- (core.household_months and core.household_events, or a revision's: build.py).
CREATE OR REPLACE TEMP TABLE _indicators AS
WITH hm AS (SELECT * FROM _month_households WHERE month = $month),
stock AS (SELECT * FROM hm WHERE status = 'active'),
ev AS (SELECT * FROM _month_events WHERE month = $month),
housed AS (
    SELECT hm.* FROM ev JOIN hm USING (household_id)
    WHERE ev.flow = 'outflow' AND ev.type = 'to_housing'
),
needs AS (SELECT household_id, unnest(open_needs) AS need FROM stock),
answered AS (SELECT household_id, unnest(needs_answered) AS need FROM hm),
answers AS (SELECT household_id, unnest(answers) AS answer FROM hm),
seen AS (SELECT household_id, sources, unnest(sources) AS source FROM stock),
every_source AS (SELECT unnest($sources::VARCHAR[]) AS source),
priority AS (SELECT * FROM stock WHERE priority_since IS NOT NULL),
parts AS (
    SELECT 'stock_households' AS indicator, NULL AS dimension, count(*)::DOUBLE AS value
    FROM stock
    UNION ALL SELECT 'stock_households', 'situation=' || situation, count(*) FROM stock GROUP BY 2
    UNION ALL SELECT 'stock_households', 'ethos=' || ethos, count(*) FROM stock GROUP BY 2
    UNION ALL SELECT 'stock_households', 'composition=' || composition, count(*)
        FROM stock GROUP BY 2
    UNION ALL SELECT 'stock_persons', NULL, coalesce(sum(persons), 0) FROM stock
    UNION ALL SELECT 'stock_persons', 'situation=' || situation, sum(persons) FROM stock GROUP BY 2
    UNION ALL SELECT 'stock_persons', 'ethos=' || ethos, sum(persons) FROM stock GROUP BY 2
    UNION ALL SELECT 'stock_persons', 'composition=' || composition, sum(persons)
        FROM stock GROUP BY 2
    UNION ALL SELECT 'inflow_households', NULL, count(*) FROM ev WHERE flow = 'inflow'
    UNION ALL SELECT 'inflow_households', 'type=' || type, count(*)
        FROM ev WHERE flow = 'inflow' GROUP BY 2
    UNION ALL SELECT 'outflow_households', NULL, count(*) FROM ev WHERE flow = 'outflow'
    UNION ALL SELECT 'outflow_households',
        'type=' || type || coalesce(':' || housing_kind, ''), count(*)
        FROM ev WHERE flow = 'outflow' GROUP BY 2
    UNION ALL SELECT 'returns_from_housing', 'within=' || w, count(e.household_id)
        FROM (SELECT unnest([6, 12, 24]) AS w) AS windows
        LEFT JOIN ev AS e ON e.type = 'returned_from_housing' AND e.months_since_exit <= w
        GROUP BY 2
    UNION ALL SELECT 'median_months_since_first_seen', NULL, median(months_since_first_seen)
        FROM stock HAVING count(*) > 0
    UNION ALL SELECT 'mean_months_to_housing', NULL, avg(months_since_first_seen)
        FROM housed HAVING count(*) > 0
    UNION ALL SELECT 'median_months_to_housing', NULL, median(months_since_first_seen)
        FROM housed HAVING count(*) > 0
    UNION ALL SELECT 'households_with_open_request', 'need=' || need, count(DISTINCT household_id)
        FROM needs GROUP BY 2
    UNION ALL SELECT 'requests_answered', 'need=' || need, count(DISTINCT household_id)
        FROM answered GROUP BY 2
    UNION ALL SELECT 'answers_received', 'answer=' || answer, count(DISTINCT household_id)
        FROM answers GROUP BY 2
    UNION ALL SELECT 'urgence_requests_not_fulfilled', NULL, coalesce(sum(urgence_not_fulfilled), 0)
        FROM hm
    UNION ALL SELECT 'households_urgence_not_fulfilled', NULL, count(*)
        FROM hm WHERE urgence_not_fulfilled > 0
    UNION ALL SELECT 'priority_not_housed', NULL, count(*) FROM priority
    UNION ALL SELECT 'median_months_waiting_priority', NULL,
        median(date_diff('month', priority_since, $month::DATE))
        FROM priority HAVING count(*) > 0
    UNION ALL SELECT 'households_seen_by_source', 'source=' || e.source, count(s.household_id)
        FROM every_source AS e LEFT JOIN seen AS s USING (source) GROUP BY 2
    UNION ALL SELECT 'households_seen_only_by_source', 'source=' || e.source,
        count(s.household_id) FILTER (len(s.sources) = 1)
        FROM every_source AS e LEFT JOIN seen AS s USING (source) GROUP BY 2
)
SELECT $month::DATE AS month, indicator, dimension, value
FROM parts
ORDER BY indicator, dimension NULLS FIRST
