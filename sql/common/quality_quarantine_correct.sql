-- Replace a waiting row's raw data with its correction and record the change in audit_log.
WITH updated AS (
    UPDATE quarantine
    SET row_data = CAST(:row_data AS jsonb)
    WHERE id = :id AND released_at IS NULL
    RETURNING id
)
INSERT INTO audit_log (table_name, operation, row_key, old_data, new_data, changed_fields, changed_by, reason)
SELECT a.table_name, a.operation, a.row_key, a.old_data, a.new_data,
       ARRAY(SELECT jsonb_array_elements_text(a.changed_fields)), :changed_by, :reason
FROM jsonb_to_recordset(CAST(:audit AS jsonb))
    AS a(table_name text, operation text, row_key jsonb, old_data jsonb, new_data jsonb, changed_fields jsonb)
WHERE EXISTS (SELECT 1 FROM updated)
