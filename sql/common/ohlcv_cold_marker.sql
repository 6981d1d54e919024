-- The cold-tier marker of the ohlcv frame reads (get_ohlcv_frame.sql, get_ohlcv_frame_limit.sql include it
-- after their candles): with :cold, one row of NULLs (a symbol NULL: never a stored candle) when cold-tier files
-- (cold_pieces) of the series overlap [:start, :cold_end). :cold_end is the end of the caller's whole range, past
-- :end when the statement reads a limit's window. The reader then reads the manifest; most reads reach no cold
-- file and so make one round trip, not two. A fragment, not a statement: loaded only through `\ir`.
UNION ALL
SELECT NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL
WHERE CAST(:cold AS boolean)
  AND EXISTS (
    SELECT FROM cold_pieces
    WHERE table_name = 'ohlcv'
      AND exchange = :exchange
      AND symbol = ANY(CAST(:symbols AS text[]))
      AND interval = :interval
      AND price = :price
      AND min_time < CAST(:cold_end AS timestamptz)
      AND max_time >= CAST(:start AS timestamptz)
  )
