-- Hypertables of the warehouse schema and whether they have columnstore (compression) settings.
SELECT hypertable_name AS table_name, compression_enabled
FROM timescaledb_information.hypertables
WHERE hypertable_schema = current_schema()
