-- Does the target hold no row of the batch's series within the batch's time range? Then every row of the
-- batch is new and it is COPYed straight into the target (the advisory locks of the range are held, so no
-- other upsert can add rows there meanwhile). One primary-key probe per series.
SELECT NOT EXISTS (
    SELECT FROM {target} AS t
    WHERE ({series_columns}) IN (
        SELECT {series_columns} FROM jsonb_populate_recordset(CAST(NULL AS {target}), CAST(%(series)s AS jsonb))
    )
      AND t.{time_column} BETWEEN %(min_time)s AND %(max_time)s
)
