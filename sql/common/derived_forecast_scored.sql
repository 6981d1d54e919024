-- Forecast rows of the window whose actual is known: what forecast_accuracy scored (its data version).
SELECT model_id, symbol, interval, generated_at, target_time, point, actual, error
FROM forecasts
WHERE target_time >= :start AND target_time < :end AND actual IS NOT NULL
ORDER BY model_id, target_time
