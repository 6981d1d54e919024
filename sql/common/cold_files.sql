-- Cold-tier files (cold_pieces, issue 16) of a table's series whose rows overlap [:start, :end):
-- :symbols NULL = every symbol, :interval NULL = every interval (tables without one have NULL there),
-- :price NULL = every price kind of candles (ohlcv only; NULL elsewhere).
SELECT root, path, exchange, symbol, interval, price, min_time, max_time, rows, sha256
FROM cold_pieces
WHERE table_name = :table_name
  AND (CAST(:exchange AS text) IS NULL OR exchange = :exchange)
  AND (CAST(:symbols AS text[]) IS NULL OR symbol = ANY(CAST(:symbols AS text[])))
  AND (CAST(:interval AS text) IS NULL OR interval = :interval)
  AND (CAST(:price AS text) IS NULL OR price = :price)
  AND min_time < CAST(:end AS timestamptz)
  AND max_time >= CAST(:start AS timestamptz)
ORDER BY root, path
