-- Row count and ordered checksum of one relation ({relation}, rows in {order}): the md5 of each row's text,
-- concatenated in order and hashed per block of a million rows, then the block hashes hashed in order, so
-- no intermediate string nears PostgreSQL's 1 GB limit. Exact (any changed, missing, extra or reordered
-- row changes it) and one sorted scan of the table. Run after session.sql fixes how values print.
SELECT
    coalesce(sum(block_rows), 0)::bigint AS row_count,
    md5(coalesce(string_agg(block_md5, '' ORDER BY block), '')) AS checksum
FROM (
    SELECT (rn - 1) / 1000000 AS block, count(*) AS block_rows, md5(string_agg(row_md5, '' ORDER BY rn)) AS block_md5
    FROM (
        SELECT row_number() OVER (ORDER BY {order}) AS rn, md5(CAST(t AS text)) AS row_md5
        FROM {relation} AS t
    ) AS r
    GROUP BY 1
) AS b
