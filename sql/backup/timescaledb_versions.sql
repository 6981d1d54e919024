-- The TimescaleDB versions this server can install, and whether its library is preloaded.
SELECT
    array_agg(version ORDER BY version) AS versions,
    coalesce(current_setting('shared_preload_libraries', true), '') LIKE '%timescaledb%' AS preloaded
FROM pg_available_extension_versions
WHERE name = 'timescaledb'
