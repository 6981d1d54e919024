-- The series and generation time of one forecast run (the model run plotted by forecast_accuracy).
SELECT exchange, symbol, interval, generated_at
FROM forecasts
WHERE model_id = :model_id
LIMIT 1
