-- Fresh planner statistics (and row estimates) for one table (identifier composed by the stats job).
ANALYZE {table}
