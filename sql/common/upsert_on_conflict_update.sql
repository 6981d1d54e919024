ON CONFLICT ({key}) DO UPDATE SET ({update_columns}) = ROW({excluded_update_columns})
WHERE ({target_compare}) IS DISTINCT FROM ({excluded_compare})
