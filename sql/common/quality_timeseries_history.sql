-- Read through COPY (CSV), times as epoch microseconds (see quality_ohlcv_history.sql).
-- Stored points of generic series around a batch: warm-up before it and stored versions of its range
-- (see quality_ohlcv_history.sql).
WITH s AS (
    SELECT *
    FROM unnest(CAST(:source_ids AS bigint[]), CAST(:starts AS timestamptz[]), CAST(:ends AS timestamptz[]))
        AS s(source_id, start_time, end_time)
)
SELECT s.source_id, CAST(extract(epoch FROM h.time) * 1000000 AS bigint) AS time_us, h.value, h.open, h.high,
       h.low, h.close, h.volume, CAST(extract(epoch FROM h.ingested_at) * 1000000 AS bigint) AS ingested_us,
       false AS in_range
FROM s
CROSS JOIN LATERAL (
    SELECT t.time, t.value, t.open, t.high, t.low, t.close, t.volume, t.ingested_at
    FROM timeseries_data AS t
    WHERE t.source_id = s.source_id AND t.time < s.start_time
    ORDER BY t.time DESC
    LIMIT :warmup
) AS h
UNION ALL
SELECT t.source_id, CAST(extract(epoch FROM t.time) * 1000000 AS bigint), t.value, t.open, t.high, t.low, t.close,
       t.volume, CAST(extract(epoch FROM t.ingested_at) * 1000000 AS bigint), true
FROM s
JOIN timeseries_data AS t ON t.source_id = s.source_id AND t.time BETWEEN s.start_time AND s.end_time
