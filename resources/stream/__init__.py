"""Live capture of exchange websocket streams into the warehouse (issue 15), on ccxt's own `ccxt.pro`.

- `config`: the `stream:` section of an exchange in the universe file;
- `frames`: ccxt.pro structures -> rows of the warehouse tables, with exchange and arrival time;
- `writer`: micro-batches written through `resources.warehouse.load.load_frame` by a process of their own;
- `ledger`: capture gaps, stream heartbeats, system events and the coverage the stream earned;
- `service`: the long-running capture (reconnect with jittered back-off, REST back-fill of holes, SIGTERM).
"""
