-- Which of the given natural keys are stored in {table}. A template: {table}, {keys} and {t_keys} are
-- composed as quoted identifiers (psycopg2.sql); the keys arrive as one JSON array typed through the
-- table's own row type, so the comparison uses the primary key index.
SELECT {t_keys}
FROM {table} AS t
WHERE ({t_keys}) IN (
    SELECT {keys}
    FROM jsonb_populate_recordset(NULL::{table}, CAST(%(rows)s AS jsonb))
)
