-- _kept (temporary, rebuilt for each month computed)
-- Grain: one row per staged record of the months delivered before the month's inactivity
-- window that can still decide a figure of a later month; the others cannot. Such a record is
-- dated within its delivery month (staging refuses later dates), so it is out of the window,
-- of the month's answers and of its needs: it counts only through the earliest or the latest
-- of something about its person. Of `_kept_in` (those months' records, or the ones kept so far
-- and the records of the months since), per person id as linked and stretch of months in which
-- that id stands for the same person (`epoch`: the id's retirements before the month, see
-- identity/aliases.py), only the record that comes first in each order household_months.sql
-- and household_events.sql take over a household's history is kept (the same orders, total
-- on records: the first over a household is the first of its persons' firsts): the earliest
-- record (first month seen), the latest homelessness evidence, exit, composition, age band,
-- sex, and the latest record that said something (the inflow's type). A record dated after its
-- delivery month (hand-made data only) is kept whatever it says.
CREATE OR REPLACE TEMP TABLE _kept AS
WITH epochs AS (
    SELECT k.link_person_id, k.delivery_month, count(*) AS epoch
    FROM (SELECT DISTINCT link_person_id, delivery_month FROM _kept_in) AS k
    JOIN identity.person_aliases AS a
        ON a.alias_id = k.link_person_id AND a.month <= k.delivery_month
    GROUP BY ALL
),
keyed AS (  -- each order as one key: the first record is the one with the smallest key
    SELECT
        k.rowid AS id,
        k.link_person_id,
        coalesce(e.epoch, 0) AS epoch,
        k.kind,
        k.composition,
        k.age_band,
        k.sex,
        {'m': k.delivery_month, 's': k.source, 'f': k.file_sha256, 'n': k.row_number}
            AS earliest,
        {'d': -date_diff('day', DATE '2000-01-01', k.evidence_date), 'r': k.situation_rank,
            's': k.source, 'f': k.file_sha256, 'n': k.row_number} AS latest,
        {'m': -date_diff('month', DATE '2000-01-01', k.evidence_date),
            'h': k.kind = 'homeless', 'd': -date_diff('day', DATE '2000-01-01', k.evidence_date),
            'r': k.situation_rank, 's': k.source, 'f': k.file_sha256, 'n': k.row_number}
            AS said_last
    FROM _kept_in AS k LEFT JOIN epochs AS e USING (link_person_id, delivery_month)
),
firsts AS (
    SELECT unnest([
        arg_min(id, earliest),
        arg_min(id, latest) FILTER (kind = 'homeless'),
        arg_min(id, latest) FILTER (kind IN ('housed', 'deceased', 'left_territory')),
        arg_min(id, latest) FILTER (composition IS NOT NULL),
        arg_min(id, latest) FILTER (age_band IS NOT NULL),
        arg_min(id, latest) FILTER (sex IS NOT NULL),
        arg_min(id, said_last) FILTER (kind <> 'unknown')
    ]) AS id
    FROM keyed GROUP BY link_person_id, epoch
)
SELECT * FROM _kept_in
WHERE rowid IN (SELECT id FROM firsts)
    OR evidence_date > last_day(delivery_month)
    OR answer_date > last_day(delivery_month)
