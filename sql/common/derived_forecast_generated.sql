-- When each forecast run was generated (its first forecast row): forecast_accuracy's upstream partitions.
SELECT min(generated_at) AS generated_at
FROM forecasts
WHERE model_id = ANY(:model_ids)
GROUP BY model_id
