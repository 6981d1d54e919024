-- upsert_range_is_new.sql for batches of too many series to list (e.g. trades keyed by trade id): the
-- batch's whole time range must be empty.
SELECT NOT EXISTS (SELECT FROM {target} AS t WHERE t.{time_column} BETWEEN %(min_time)s AND %(max_time)s)
