-- Quarantine rows by id, locked so a concurrent release or correction waits.
SELECT id, table_name, key, row_data, rule, message, released_at
FROM quarantine
WHERE id = ANY(CAST(:ids AS bigint[]))
ORDER BY id
FOR UPDATE
