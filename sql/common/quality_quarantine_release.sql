-- Mark released rows and record one audit_log row per row upserted from quarantine.
WITH released AS (
    UPDATE quarantine
    SET released_at = now(), released_by_run = :run_id
    WHERE id = ANY(CAST(:ids AS bigint[])) AND released_at IS NULL
    RETURNING id
)
INSERT INTO audit_log (table_name, operation, row_key, old_data, new_data, changed_fields, changed_by, reason)
SELECT a.table_name, a.operation, a.row_key, a.old_data, a.new_data, NULL, :run_id,
       :reason || ' #' || (a.old_data ->> 'quarantine_id')
FROM jsonb_to_recordset(CAST(:audit AS jsonb))
    AS a(table_name text, operation text, row_key jsonb, old_data jsonb, new_data jsonb)
WHERE (a.old_data ->> 'quarantine_id')::bigint IN (SELECT id FROM released)
