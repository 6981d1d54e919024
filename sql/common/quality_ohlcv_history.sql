-- Stored candles around a batch, per series: the last :warmup closes before the batch (warm-up of the
-- rolling z-scores, so a partition scores the same whichever way it is loaded) and the stored versions of
-- the batch's range (their first ingest time keeps the timeliness score stable on re-runs).
WITH s AS (
    SELECT *
    FROM unnest(
        CAST(:exchanges AS text[]), CAST(:symbols AS text[]), CAST(:intervals AS text[]),
        CAST(:starts AS timestamptz[]), CAST(:ends AS timestamptz[])
    ) AS s(exchange, symbol, interval, start_time, end_time)
)
SELECT s.exchange, s.symbol, s.interval, h.time, h.close AS price, h.volume, h.ingested_at, false AS in_range
FROM s
CROSS JOIN LATERAL (
    SELECT o.time, o.close, o.volume, o.ingested_at
    FROM ohlcv AS o
    WHERE o.exchange = s.exchange AND o.symbol = s.symbol AND o.interval = s.interval
      AND o.time < s.start_time
    ORDER BY o.time DESC
    LIMIT :warmup
) AS h
UNION ALL
SELECT o.exchange, o.symbol, o.interval, o.time, o.close, o.volume, o.ingested_at, true
FROM s
JOIN ohlcv AS o
  ON o.exchange = s.exchange AND o.symbol = s.symbol AND o.interval = s.interval
 AND o.time BETWEEN s.start_time AND s.end_time
