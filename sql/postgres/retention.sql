-- Retention on plain PostgreSQL: whole partitions are detached from their parent, then dropped.
-- Identifiers come from regclass output, which quotes them as needed.
CREATE OR REPLACE FUNCTION mw_drop_partition(part regclass)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    parent regclass;
BEGIN
    SELECT inhparent INTO parent FROM pg_inherits WHERE inhrelid = part;
    IF parent IS NULL THEN
        RAISE EXCEPTION '% is not a partition', part;
    END IF;
    EXECUTE format('ALTER TABLE %s DETACH PARTITION %s', parent, part);
    EXECUTE format('DROP TABLE %s', part);
END $$;
