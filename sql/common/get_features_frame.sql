-- Stored features of one feature set for one or many series of an exchange and interval, time in
-- [:start, :end), ordered by symbol then time: the frame reads of the storage API (get_features_frame).
-- The exchange, interval and feature set are the caller's constants (added by the reader); {columns} is the
-- list of feature columns of the model (resources.models.analytics.FEATURE_COLUMNS), filled by sql_text.
SELECT symbol, time, {columns}
FROM features
WHERE exchange = :exchange
  AND symbol = ANY(CAST(:symbols AS text[]))
  AND interval = :interval
  AND feature_set = :feature_set
  AND time >= CAST(:start AS timestamptz)
  AND time < CAST(:end AS timestamptz)
ORDER BY symbol, time
LIMIT :limit
