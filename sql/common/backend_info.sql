-- Server and TimescaleDB versions; the license GUC exists only once the extension library is loaded.
SELECT
    current_setting('server_version') AS server_version,
    (SELECT extversion FROM pg_extension WHERE extname = 'timescaledb') AS timescaledb_version,
    current_setting('timescaledb.license', true) AS timescaledb_license
