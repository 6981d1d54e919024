-- Whether CREATE EXTENSION timescaledb can succeed on this server.
SELECT
    EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb') AS available,
    current_setting('shared_preload_libraries', true) AS preload
