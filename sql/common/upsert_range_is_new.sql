-- Does the target hold no row of any of the batch's series within that series' time range in the batch?
-- Then every row of the batch is new and it is COPYed straight into the target (the advisory locks of the
-- range are held, so no other upsert can add rows there meanwhile). One primary-key probe per series; each
-- element of the series array holds the series' key columns plus its first and last time (mw_from, mw_to).
SELECT NOT EXISTS (
    SELECT
    FROM jsonb_array_elements(CAST(%(series)s AS jsonb)) AS e
    CROSS JOIN LATERAL jsonb_populate_record(CAST(NULL AS {target}), e) AS r
    WHERE EXISTS (
        SELECT FROM {target} AS t
        WHERE ({target_series}) = ({record_series})
          AND t.{time_column} BETWEEN CAST(e ->> 'mw_from' AS timestamptz) AND CAST(e ->> 'mw_to' AS timestamptz)
          AND t.{time_column} BETWEEN %(min_time)s AND %(max_time)s
    )
)
