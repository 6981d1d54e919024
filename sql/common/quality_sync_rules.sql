-- Mirror the code-defined suites into validation_rules, idempotent by (dataset, name).
-- Operator-owned fields (params, severity, enabled) of an existing row are kept; kind, column and
-- description follow the code. Returns the number of rows inserted.
WITH incoming AS (
    SELECT *
    FROM jsonb_to_recordset(CAST(:rows AS jsonb))
        AS r(dataset text, name text, kind text, column_name text, params jsonb, severity text, description text)
), upserted AS (
    INSERT INTO validation_rules (dataset, name, kind, column_name, params, severity, description)
    SELECT dataset, name, kind, column_name, coalesce(params, '{}'::jsonb), severity, description
    FROM incoming
    ON CONFLICT (dataset, name) DO UPDATE
        SET kind = EXCLUDED.kind,
            column_name = EXCLUDED.column_name,
            description = EXCLUDED.description
        WHERE (validation_rules.kind, validation_rules.column_name, validation_rules.description)
            IS DISTINCT FROM (EXCLUDED.kind, EXCLUDED.column_name, EXCLUDED.description)
    RETURNING (xmax = 0) AS inserted
)
SELECT count(*) FILTER (WHERE inserted) FROM upserted
