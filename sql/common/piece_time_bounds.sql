-- Oldest and newest time in one chunk or partition (identifiers composed by resources/maintenance/pieces.py).
SELECT min({time_column}) AS oldest, max({time_column}) AS newest FROM {piece}
