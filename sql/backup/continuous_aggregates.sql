-- Continuous aggregates by name, with whether they read only materialized rows.
SELECT
    format('%I.%I', view_schema, view_name) AS view,
    materialized_only
FROM timescaledb_information.continuous_aggregates
ORDER BY 1
