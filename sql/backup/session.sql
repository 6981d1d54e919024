-- How values print, fixed for the checksums so that the source and the restored database agree whatever
-- their configured defaults (a time zone or date style set per database or role would change every row).
SET LOCAL TimeZone = 'UTC';
SET LOCAL DateStyle = 'ISO, YMD';
SET LOCAL IntervalStyle = 'postgres';
SET LOCAL extra_float_digits = 1;
SET LOCAL bytea_output = 'hex';
