-- Continuous aggregates are views (their rows live in internal hypertables): checksummed like tables, by
-- name, so a restore proves the materialized rows came back too.
SELECT view_schema AS schema_name, view_name AS relation_name
FROM timescaledb_information.continuous_aggregates
ORDER BY 1, 2
