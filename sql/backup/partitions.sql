-- Every partition of every partitioned table with its bound (DEFAULT included): the partition layout a
-- restore must reproduce exactly.
SELECT
    format('%I.%I', pn.nspname, p.relname) AS parent,
    format('%I.%I', cn.nspname, c.relname) AS partition,
    pg_get_expr(c.relpartbound, c.oid) AS bound
FROM pg_inherits i
JOIN pg_class p ON p.oid = i.inhparent AND p.relkind = 'p'
JOIN pg_namespace pn ON pn.oid = p.relnamespace
JOIN pg_class c ON c.oid = i.inhrelid
JOIN pg_namespace cn ON cn.oid = c.relnamespace
ORDER BY 1, 2
