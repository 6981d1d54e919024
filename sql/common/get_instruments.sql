-- Instruments of the warehouse (issue 13), each filter NULL = any. :at keeps those listed at that instant,
-- delisted ones included (no survivorship bias): listed at or before it (unknown listing = listed), not
-- delisted by then (delisted_at; an inactive instrument without one was listed until we last saw it), not
-- expired. Ordered by exchange and symbol.
SELECT exchange, symbol, type, base, quote, settle, exchange_symbol, contract_size, linear, inverse, expiry,
       strike, option_type, tick_size, lot_size, active, first_seen, last_seen, listed_at, delisted_at, source,
       info
FROM instruments
WHERE (CAST(:exchange AS text) IS NULL OR exchange = :exchange)
  AND (CAST(:type AS text) IS NULL OR type = :type)
  AND (CAST(:active AS boolean) IS NULL OR active = :active)
  AND (
      CAST(:at AS timestamptz) IS NULL
      OR (
          coalesce(listed_at, '-infinity') <= CAST(:at AS timestamptz)
          AND coalesce(delisted_at, CASE WHEN active THEN 'infinity' ELSE last_seen END)
              >= CAST(:at AS timestamptz)
          AND coalesce(expiry, 'infinity') > CAST(:at AS timestamptz)
      )
  )
ORDER BY exchange, symbol
