-- Read through COPY (CSV), times as epoch microseconds (see quality_ohlcv_history.sql).
-- Stored points of generic series around a batch: warm-up before it and stored versions of its range,
-- bounded by constants so that only the partitions of the batch and its warm-up are read
-- (see quality_ohlcv_history.sql).
WITH s AS (
    SELECT *
    FROM unnest(CAST(:source_ids AS bigint[]), CAST(:starts AS timestamptz[]), CAST(:ends AS timestamptz[]))
        WITH ORDINALITY AS s(source_id, start_time, end_time, series)
)
SELECT s.series - 1 AS series, CAST(extract(epoch FROM h.time) * 1000000 AS bigint) AS time_us, h.value, h.open, h.high,
       h.low, h.close, h.volume, h.quality_score, h.is_anomaly,
       CAST(extract(epoch FROM h.ingested_at) * 1000000 AS bigint) AS ingested_us,
       false AS in_range
FROM s
CROSS JOIN LATERAL (
    SELECT t.time, t.value, t.open, t.high, t.low, t.close, t.volume, t.quality_score, t.is_anomaly, t.ingested_at
    FROM timeseries_data AS t
    WHERE t.source_id = s.source_id AND t.time < s.start_time
      AND t.time >= CAST(:warmup_from AS timestamptz) AND t.time < CAST(:last_start AS timestamptz)
    ORDER BY t.time DESC
    LIMIT :warmup
) AS h
UNION ALL
SELECT s.series - 1, CAST(extract(epoch FROM t.time) * 1000000 AS bigint), t.value, t.open, t.high, t.low, t.close,
       t.volume, t.quality_score, t.is_anomaly, CAST(extract(epoch FROM t.ingested_at) * 1000000 AS bigint), true
FROM s
JOIN timeseries_data AS t ON t.source_id = s.source_id AND t.time BETWEEN s.start_time AND s.end_time
WHERE t.time BETWEEN CAST(:range_from AS timestamptz) AND CAST(:range_to AS timestamptz)
  AND CAST(:with_range AS boolean)
