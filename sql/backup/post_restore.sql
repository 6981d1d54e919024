SELECT timescaledb_post_restore()
