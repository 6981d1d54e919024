-- Fast path for a batch of only new rows: straight into the target (COPY's multi-row inserts write about
-- twice as fast as INSERT … SELECT from staging).
COPY {target} ({columns}) FROM STDIN WITH (FORMAT binary)
