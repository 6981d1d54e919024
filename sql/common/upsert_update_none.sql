updated AS (SELECT CAST(NULL AS timestamptz) AS row_time WHERE false),
