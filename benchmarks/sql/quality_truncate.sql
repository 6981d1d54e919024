-- benchmarks/validation.py: empty the tables a load writes, between the timed loads (scratch database).
TRUNCATE ohlcv, quarantine, anomalies, timeseries_archive, audit_log, aggregate_dirty_windows
