-- Every model's forecasts of one series generated at one instant, with the model kind (for the plot).
SELECT ml_models.kind, forecasts.target_time, forecasts.point, forecasts.lower_95, forecasts.upper_95
FROM forecasts
JOIN ml_models ON ml_models.id = forecasts.model_id
WHERE forecasts.exchange = :exchange AND forecasts.symbol = :symbol AND forecasts.interval = :interval
  AND forecasts.generated_at = :generated_at
ORDER BY forecasts.target_time
