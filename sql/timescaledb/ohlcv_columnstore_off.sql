-- Migration 0005: `ohlcv`'s chunks back to the rowstore and its columnstore disabled, so its key and
-- segmentby can change (TimescaleDB refuses both while chunks are compressed). The maintenance job
-- converts the old chunks again on its next run.
SELECT count(decompress_chunk(c, true)) FROM show_chunks('ohlcv') AS c;
ALTER TABLE ohlcv SET (timescaledb.compress = false);
