SELECT timescaledb_pre_restore()
