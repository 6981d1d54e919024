-- Read through COPY (CSV) by resources/quality/scores.py: times as epoch microseconds, no parsing.
-- Stored candles around a batch, per series: the last :warmup candles before the batch (warm-up of the
-- rolling z-scores, so a partition scores the same whichever way it is loaded) and the stored versions of
-- the batch's range (to tell new and changed rows from unchanged ones, whose ingest time is kept).
WITH s AS (
    SELECT *
    FROM unnest(
        CAST(:exchanges AS text[]), CAST(:symbols AS text[]), CAST(:intervals AS text[]),
        CAST(:starts AS timestamptz[]), CAST(:ends AS timestamptz[])
    ) AS s(exchange, symbol, interval, start_time, end_time)
)
SELECT s.exchange, s.symbol, s.interval, CAST(extract(epoch FROM h.time) * 1000000 AS bigint) AS time_us,
       h.open, h.high, h.low, h.close, h.volume, h.quote_volume, h.trades_count, h.vwap,
       CAST(extract(epoch FROM h.ingested_at) * 1000000 AS bigint) AS ingested_us, false AS in_range
FROM s
CROSS JOIN LATERAL (
    SELECT o.time, o.open, o.high, o.low, o.close, o.volume, o.quote_volume, o.trades_count, o.vwap,
           o.ingested_at
    FROM ohlcv AS o
    WHERE o.exchange = s.exchange AND o.symbol = s.symbol AND o.interval = s.interval
      AND o.time < s.start_time
    ORDER BY o.time DESC
    LIMIT :warmup
) AS h
UNION ALL
SELECT o.exchange, o.symbol, o.interval, CAST(extract(epoch FROM o.time) * 1000000 AS bigint),
       o.open, o.high, o.low, o.close, o.volume, o.quote_volume, o.trades_count, o.vwap,
       CAST(extract(epoch FROM o.ingested_at) * 1000000 AS bigint), true
FROM s
JOIN ohlcv AS o
  ON o.exchange = s.exchange AND o.symbol = s.symbol AND o.interval = s.interval
 AND o.time BETWEEN s.start_time AND s.end_time
