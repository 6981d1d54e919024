-- Candles per interval in [start, end) of ohlcv, of the given intervals only (every interval when
-- :intervals is null): what retention is about to drop or delete, counted before it does.
SELECT interval, count(*) AS candles
FROM ohlcv
WHERE time >= :start AND time < :end
  AND (CAST(:intervals AS text[]) IS NULL OR interval = ANY(CAST(:intervals AS text[])))
GROUP BY interval
ORDER BY interval
