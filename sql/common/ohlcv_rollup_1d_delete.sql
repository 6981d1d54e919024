DELETE FROM mw_aggregates.ohlcv_1d WHERE bucket >= :start AND bucket < :end
