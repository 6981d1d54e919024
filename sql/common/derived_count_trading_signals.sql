-- Signals of one strategy in [start, end): the trading_signals asset's dagster/row_count.
SELECT count(*) FROM trading_signals WHERE time >= :start AND time < :end AND strategy = :strategy
