-- The seeds' style of loading, kept only as a benchmark baseline: one INSERT … ON CONFLICT per candle.
INSERT INTO ohlcv (exchange, symbol, interval, price, time, open, high, low, close, volume, trades_count, quality_score)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
ON CONFLICT (exchange, symbol, interval, price, time) DO UPDATE
SET open = EXCLUDED.open, high = EXCLUDED.high, low = EXCLUDED.low, close = EXCLUDED.close,
    volume = EXCLUDED.volume, trades_count = EXCLUDED.trades_count, quality_score = EXCLUDED.quality_score
