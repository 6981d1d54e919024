-- Upserts into compressed chunks decompress the touched batches first; TimescaleDB caps how many tuples one
-- DML transaction may decompress. Raised for this transaction only, sized by the caller to the batch.
SELECT set_config('timescaledb.max_tuples_decompressed_per_dml_transaction', :limit, true)
