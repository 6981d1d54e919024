-- Anomalies found in one batch, set-based; a (table, series, time, metric) already recorded is skipped so
-- re-running a partition writes zero rows. Returns the number inserted.
WITH incoming AS (
    SELECT *
    FROM jsonb_to_recordset(CAST(:rows AS jsonb))
        AS r(series_key jsonb, time timestamptz, metric text, value double precision, zscore double precision,
             severity text)
), inserted AS (
    INSERT INTO anomalies (table_name, series_key, time, metric, value, zscore, severity, run_id)
    SELECT :table_name, i.series_key, i.time, i.metric, i.value, i.zscore, i.severity, :run_id
    FROM incoming AS i
    WHERE NOT EXISTS (
        SELECT 1
        FROM anomalies AS a
        WHERE a.table_name = :table_name
          AND a.time = i.time
          AND a.metric = i.metric
          AND a.series_key = i.series_key
    )
    RETURNING 1
)
SELECT count(*) FROM inserted
