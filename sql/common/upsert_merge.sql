-- The upsert of one staged batch: stored rows whose compared columns differ are updated, missing rows are
-- inserted, unchanged rows are not touched (no write, no dirty window, no audit row). Both sub-statements
-- read the snapshot taken before either writes, so a row is either updated or inserted, never both.
-- A plain INSERT of the anti-join is about twice as fast as INSERT … ON CONFLICT for new rows (no
-- speculative insertion); it is safe because every upsert of a range holds that range's advisory locks, and
-- the primary key still refuses a duplicate from any writer that does not. The time-range condition lets
-- the planner prune partitions (chunks) to those of the batch.
WITH {audit}{update}inserted AS (
    INSERT INTO {target} ({columns})
    SELECT {columns} FROM {stage} AS s
    WHERE NOT EXISTS (
        SELECT FROM {target} AS t
        WHERE ({target_key}) = ({stage_key}) AND t.{time_column} BETWEEN %(min_time)s AND %(max_time)s
    )
    RETURNING {time_column} AS row_time
), up AS (
    SELECT row_time FROM updated UNION ALL SELECT row_time FROM inserted
){dirty}
SELECT (SELECT count(*) FROM inserted) AS inserted, (SELECT count(*) FROM updated) AS updated
