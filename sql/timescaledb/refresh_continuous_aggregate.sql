-- Cannot run inside a transaction block: execute on an AUTOCOMMIT connection.
CALL refresh_continuous_aggregate(CAST(:view_name AS regclass), CAST(:start AS timestamptz), CAST(:end AS timestamptz))
