-- Undo columnstore_settings.sql: chunks back to the rowstore, then compression disabled (any version).
SELECT count(decompress_chunk(c, true))
FROM unnest(ARRAY['ohlcv', 'market_metrics', 'features', 'market_trades', 'orderbook_snapshots']) AS t(name),
     LATERAL show_chunks(CAST(t.name AS regclass)) AS c;
ALTER TABLE ohlcv SET (timescaledb.compress = false);
ALTER TABLE market_metrics SET (timescaledb.compress = false);
ALTER TABLE features SET (timescaledb.compress = false);
ALTER TABLE market_trades SET (timescaledb.compress = false);
ALTER TABLE orderbook_snapshots SET (timescaledb.compress = false);
