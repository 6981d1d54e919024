-- Candles of a price kind other than 'trade', counted per kind: the downgrade of migration 0005 refuses to
-- run while any exist (the old key cannot hold them, and no default destroys data).
SELECT price, count(*) AS rows FROM ohlcv WHERE price <> 'trade' GROUP BY price ORDER BY price
