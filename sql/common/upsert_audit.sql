-- Change audit (only when the caller asks for it): stored rows that this batch will change, compared on
-- the same columns as the upsert, read from the statement's snapshot, i.e. before the update. The old row
-- goes to timeseries_archive and an 'update' row to audit_log, all in the upsert's own statement.
-- The batch's time range, bound as constants, confines the join to the batch's partitions (chunks): without
-- it the server scans and hashes the whole table, and re-loading one day gets slower as the table grows.
changed AS (
    SELECT to_jsonb(t) - CAST(%(non_key_columns)s AS text[]) AS row_key,
           to_jsonb(t) AS old_data,
           to_jsonb(t) || (to_jsonb(s) - CAST(%(not_offered_columns)s AS text[])) AS new_data
    FROM {stage} AS s JOIN {target} AS t ON ({target_key}) = ({stage_key})
    WHERE t.{time_column} BETWEEN %(min_time)s AND %(max_time)s
      AND ({target_compare}) IS DISTINCT FROM ({stage_compare})
), archived AS (
    INSERT INTO timeseries_archive (table_name, row_key, row_data, reason, archived_by)
    SELECT %(table_name)s, row_key, old_data, %(reason)s, %(changed_by)s FROM changed
), audited AS (
    INSERT INTO audit_log (table_name, operation, row_key, old_data, new_data, changed_fields, changed_by, reason)
    SELECT %(table_name)s, 'update', row_key, old_data, new_data,
           ARRAY(
               SELECT o.key FROM jsonb_each(old_data) AS o JOIN jsonb_each(new_data) AS n USING (key)
               WHERE o.value IS DISTINCT FROM n.value AND o.key = ANY(CAST(%(compare_columns)s AS text[]))
               ORDER BY o.key
           ),
           %(changed_by)s, %(reason)s
    FROM changed
),
