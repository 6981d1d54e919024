-- Rows of {table} whose {column} is in [start, end): what an asset check reads back. A template:
-- {table} and {column} are composed as quoted identifiers (psycopg2.sql).
SELECT *
FROM {table}
WHERE {column} >= %(start)s AND {column} < %(end)s
ORDER BY {column}
LIMIT %(limit)s
