-- Exact row count of one chunk or partition (identifiers composed by resources/maintenance/pieces.py).
SELECT count(*) FROM {piece}
