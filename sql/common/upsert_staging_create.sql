-- Staging table of one upsert batch: same columns and types as the target (binary COPY needs exact types),
-- no indexes to maintain; defaults fill the columns a frame omits (LIKE keeps their NOT NULL). Dropped at
-- commit, and explicitly after the merge so that a caller may run several batches in one transaction.
CREATE TEMP TABLE {stage} (LIKE {target} INCLUDING DEFAULTS) ON COMMIT DROP
