-- Natural keys stored more than once in {table} among rows whose {column} is in [start, end), with the
-- number of such keys on every row. A template: identifiers composed with psycopg2.sql.
SELECT {keys}, count(*) AS copies, count(*) OVER () AS groups
FROM {table}
WHERE {column} >= %(start)s AND {column} < %(end)s
GROUP BY {keys}
HAVING count(*) > 1
ORDER BY copies DESC
LIMIT 20
