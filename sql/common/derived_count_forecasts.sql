-- Forecast rows generated in (start, end]: a run generated at D+1 00:00 belongs to day D.
SELECT count(*) FROM forecasts WHERE generated_at >= :start AND generated_at < :end
