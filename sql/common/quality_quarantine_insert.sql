-- Rejected rows of one batch into quarantine, set-based from one JSON array.
-- Idempotent: a row already waiting in quarantine (same table, key, rule and raw data, not released) is
-- not inserted again, so re-running a partition writes zero rows. Returns the number inserted.
WITH incoming AS (
    SELECT *
    FROM jsonb_to_recordset(CAST(:rows AS jsonb))
        AS r(key jsonb, row_data jsonb, rule text, message text)
), inserted AS (
    INSERT INTO quarantine (table_name, key, row_data, rule, message, run_id, partition_key, source)
    SELECT :table_name, i.key, i.row_data, i.rule, i.message, :run_id, :partition_key, :source
    FROM incoming AS i
    WHERE NOT EXISTS (
        SELECT 1
        FROM quarantine AS q
        WHERE q.table_name = :table_name
          AND q.released_at IS NULL
          AND q.rule = i.rule
          AND q.key IS NOT DISTINCT FROM i.key
          AND q.row_data = i.row_data
    )
    RETURNING 1
)
SELECT count(*) FROM inserted
