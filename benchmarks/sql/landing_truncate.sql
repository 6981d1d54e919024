-- Benchmark of the landing-folder load (benchmarks/landing.py): empty what a folder load writes.
TRUNCATE ohlcv, quarantine, ingest_files, anomalies, audit_log
