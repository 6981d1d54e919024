-- Does the target hold no row of any of the batch's series within that series' time range in the batch?
-- Then every row of the batch is new and it is COPYed straight into the target (the advisory locks of the
-- range are held, so no other upsert can add rows there meanwhile). Each element of the series array holds
-- a series' key columns plus its first and last time (mw_from, mw_to); the LATERAL … LIMIT 1 makes it one
-- primary-key probe per series (a semi-join would be planned as a scan of the partitions).
SELECT NOT EXISTS (
    SELECT
    FROM jsonb_array_elements(CAST(%(series)s AS jsonb)) AS e
    CROSS JOIN LATERAL jsonb_populate_record(CAST(NULL AS {target}), e) AS r
    CROSS JOIN LATERAL (
        SELECT FROM {target} AS t
        WHERE ({target_series}) = ({record_series})
          AND t.{time_column} BETWEEN CAST(e ->> 'mw_from' AS timestamptz) AND CAST(e ->> 'mw_to' AS timestamptz)
          AND t.{time_column} BETWEEN %(min_time)s AND %(max_time)s
        LIMIT 1
    ) AS hit
)
