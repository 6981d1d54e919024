-- Native range partitioning for time-series tables on plain PostgreSQL (RDS, embedded).
-- Partitions are aligned to multiples of the interval since the Unix epoch, like TimescaleDB chunks, and
-- named <table>_pYYYYMMDD after their UTC start. A DEFAULT partition catches anything outside them, so an
-- insert never fails for lack of a partition; creating a partition later moves its rows out of DEFAULT.

CREATE OR REPLACE FUNCTION mw_partition_start(ts timestamptz, every interval)
RETURNS timestamptz LANGUAGE sql IMMUTABLE AS $$
    SELECT to_timestamp(floor(extract(epoch FROM ts) / extract(epoch FROM every)) * extract(epoch FROM every))
$$;

CREATE OR REPLACE FUNCTION mw_ensure_default_partition(parent regclass)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    nsp text;
    rel text;
BEGIN
    SELECT n.nspname, c.relname INTO nsp, rel
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = parent;
    EXECUTE format('CREATE TABLE IF NOT EXISTS %I.%I PARTITION OF %s DEFAULT', nsp, rel || '_default', parent);
END $$;

-- Creates every missing partition of `parent` covering [from_ts, to_ts]; returns how many were created.
-- Rows already in the DEFAULT partition for a new partition's range are moved into it in the same
-- transaction. A transaction-scoped advisory lock serializes partition DDL of one table across sessions.
CREATE OR REPLACE FUNCTION mw_ensure_partitions(
    parent regclass, time_column text, every interval, from_ts timestamptz, to_ts timestamptz
) RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    nsp text;
    rel text;
    dflt regclass;
    step interval := make_interval(secs => extract(epoch FROM every));
    part_start timestamptz := mw_partition_start(from_ts, every);
    part_end timestamptz;
    part_name text;
    has_rows boolean;
    created integer := 0;
BEGIN
    SELECT n.nspname, c.relname INTO nsp, rel
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = parent;
    PERFORM pg_advisory_xact_lock(hashtext('mw_partitions'), hashtext(parent::text));
    dflt := to_regclass(format('%I.%I', nsp, rel || '_default'));
    WHILE part_start <= to_ts LOOP
        part_end := part_start + step;
        part_name := rel || '_p' || to_char(part_start AT TIME ZONE 'UTC', 'YYYYMMDD');
        IF to_regclass(format('%I.%I', nsp, part_name)) IS NULL THEN
            has_rows := false;
            IF dflt IS NOT NULL THEN
                EXECUTE format('SELECT EXISTS (SELECT 1 FROM %s WHERE %I >= $1 AND %I < $2)',
                               dflt, time_column, time_column)
                    INTO has_rows USING part_start, part_end;
            END IF;
            IF has_rows THEN
                EXECUTE format('CREATE TABLE %I.%I (LIKE %s INCLUDING DEFAULTS INCLUDING CONSTRAINTS)',
                               nsp, part_name, parent);
                EXECUTE format('WITH moved AS (DELETE FROM %s WHERE %I >= $1 AND %I < $2 RETURNING *) '
                               'INSERT INTO %I.%I SELECT * FROM moved',
                               dflt, time_column, time_column, nsp, part_name)
                    USING part_start, part_end;
                EXECUTE format('ALTER TABLE %s ATTACH PARTITION %I.%I FOR VALUES FROM (%L) TO (%L)',
                               parent, nsp, part_name, part_start, part_end);
            ELSE
                EXECUTE format('CREATE TABLE %I.%I PARTITION OF %s FOR VALUES FROM (%L) TO (%L)',
                               nsp, part_name, parent, part_start, part_end);
            END IF;
            created := created + 1;
        END IF;
        part_start := part_end;
    END LOOP;
    RETURN created;
END $$;
