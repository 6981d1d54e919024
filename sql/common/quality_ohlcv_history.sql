-- Read through COPY (CSV) by resources/quality/scores.py: times as epoch microseconds, and the series as its
-- position in the arrays of the batch's series (0-based), no text to parse.
-- Stored candles around a batch, per series: the last :warmup candles before the batch (warm-up of the
-- rolling z-scores, so a partition scores the same whichever way it is loaded) and the stored versions of
-- the batch's range, with every compared column (unchanged rows keep their ingest time, and the load does
-- not send them to the upsert at all). :with_range false leaves the stored versions out (a second read of
-- the warm-up only).
-- The batch's bounds also arrive as constants (:range_from .. :range_to; :warmup_from .. :last_start for the
-- warm-up, widened by the caller for series it leaves short): the planner then reads only the
-- partitions (chunks) of the batch and of its warm-up, whatever the size of the table.
WITH s AS (
    SELECT *
    FROM unnest(
        CAST(:exchanges AS text[]), CAST(:symbols AS text[]), CAST(:intervals AS text[]), CAST(:prices AS text[]),
        CAST(:starts AS timestamptz[]), CAST(:ends AS timestamptz[])
    ) WITH ORDINALITY AS s(exchange, symbol, interval, price, start_time, end_time, series)
)
SELECT s.series - 1 AS series, CAST(extract(epoch FROM h.time) * 1000000 AS bigint) AS time_us,
       h.open, h.high, h.low, h.close, h.volume, h.quote_volume, h.trades_count, h.vwap,
       h.quality_score, h.is_anomaly, h.source,
       CAST(extract(epoch FROM h.ingested_at) * 1000000 AS bigint) AS ingested_us, false AS in_range
FROM s
CROSS JOIN LATERAL (
    SELECT o.time, o.open, o.high, o.low, o.close, o.volume, o.quote_volume, o.trades_count, o.vwap,
           o.quality_score, o.is_anomaly, o.source, o.ingested_at
    FROM ohlcv AS o
    WHERE o.exchange = s.exchange AND o.symbol = s.symbol AND o.interval = s.interval AND o.price = s.price
      AND o.time < s.start_time
      AND o.time >= CAST(:warmup_from AS timestamptz) AND o.time < CAST(:last_start AS timestamptz)
    ORDER BY o.time DESC
    LIMIT :warmup
) AS h
UNION ALL
SELECT s.series - 1, CAST(extract(epoch FROM o.time) * 1000000 AS bigint),
       o.open, o.high, o.low, o.close, o.volume, o.quote_volume, o.trades_count, o.vwap,
       o.quality_score, o.is_anomaly, o.source, CAST(extract(epoch FROM o.ingested_at) * 1000000 AS bigint), true
FROM s
JOIN ohlcv AS o
  ON o.exchange = s.exchange AND o.symbol = s.symbol AND o.interval = s.interval AND o.price = s.price
 AND o.time BETWEEN s.start_time AND s.end_time
WHERE o.time BETWEEN CAST(:range_from AS timestamptz) AND CAST(:range_to AS timestamptz)
  AND CAST(:with_range AS boolean)
