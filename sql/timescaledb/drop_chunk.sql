-- Drop the chunk(s) lying entirely within [range_start, range_end): with the bounds of one chunk, that chunk.
SELECT count(*) AS dropped FROM drop_chunks(
    CAST(:table_name AS regclass),
    older_than => CAST(:range_end AS timestamptz),
    newer_than => CAST(:range_start AS timestamptz)
)
