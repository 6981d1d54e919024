-- audit_log rows from one JSON array (rows written outside the upsert's own audit, e.g. restores that
-- re-insert a row that no longer existed).
INSERT INTO audit_log (table_name, operation, row_key, old_data, new_data, changed_fields, changed_by, reason)
SELECT a.table_name, a.operation, a.row_key, a.old_data, a.new_data, NULL, :changed_by, a.reason
FROM jsonb_to_recordset(CAST(:rows AS jsonb))
    AS a(table_name text, operation text, row_key jsonb, old_data jsonb, new_data jsonb, reason text)
