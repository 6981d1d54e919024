-- Rows of a time-series table in [start, end) (identifiers composed by resources/maintenance/retention.py):
-- the rows of one chunk or partition, also of one that the same nightly run creates before retention.
SELECT count(*) FROM {table} WHERE {time_column} >= :start AND {time_column} < :end
