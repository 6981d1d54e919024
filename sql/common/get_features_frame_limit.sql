-- get_features_frame.sql with at most :limit rows per series (the first ones in time order); {columns}: the
-- feature columns (unqualified: only `f` has them).
SELECT f.symbol, f.time, {columns}
FROM unnest(CAST(:symbols AS text[])) AS s(symbol)
CROSS JOIN LATERAL (
    SELECT *
    FROM features
    WHERE exchange = :exchange
      AND symbol = s.symbol
      AND interval = :interval
      AND feature_set = :feature_set
      AND time >= CAST(:start AS timestamptz)
      AND time < CAST(:end AS timestamptz)
    ORDER BY time
    LIMIT :limit
) AS f
ORDER BY f.symbol, f.time
