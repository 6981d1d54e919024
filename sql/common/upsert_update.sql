updated AS (
    UPDATE {target} AS t SET ({update_columns}) = ROW({stage_update_columns})
    FROM {stage} AS s
    WHERE ({target_key}) = ({stage_key}) AND t.{time_column} BETWEEN %(min_time)s AND %(max_time)s
      AND ({target_compare}) IS DISTINCT FROM ({stage_compare})
    RETURNING t.{time_column} AS row_time
),
