-- Stored validation rules of one dataset, in creation order (enabled or not: overrides need both).
SELECT id, dataset, name, kind, column_name, params, severity, enabled, description
FROM validation_rules
WHERE dataset = :dataset
ORDER BY id
