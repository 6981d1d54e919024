-- upsert_merge_on_conflict.sql for servers before PostgreSQL 18, where RETURNING cannot tell an insert
-- from an update on a partitioned table (xmax is not available there). The rows of the batch that already
-- exist are counted in the same statement (same snapshot; the advisory locks keep other loads of the range
-- out), so inserted = offered - existing and updated = written - inserted.
WITH {audit}existing AS (
    SELECT count(*) AS n
    FROM {stage} AS s JOIN {target} AS t ON ({target_key}) = ({stage_key})
    WHERE t.{time_column} BETWEEN %(min_time)s AND %(max_time)s
), up AS (
    INSERT INTO {target} AS t ({columns})
    SELECT {columns} FROM {stage}
    {on_conflict}
    RETURNING t.{time_column} AS row_time
){dirty}
SELECT %(offered)s - e.n AS inserted, (SELECT count(*) FROM up) - (%(offered)s - e.n) AS updated
FROM existing AS e
