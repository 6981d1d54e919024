"""Universe files of the market-data tests: a synthetic exchange (offline) and Binance (against the replay).

A helper module, not a test module: `test_market_data_assets.py` and `test_retries.py` both read it.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

SYNTHETIC_UNIVERSE = """
exchanges:
  synthetic:
    driver: synthetic
    seed: 5
    symbols: [BTC/USDT]
    intervals: [1h]
    orderbook_depth: 5
    snapshot_every: 6h
    metrics:
      - {metric: funding_rate, symbol: BTC/USDT:USDT}
      - {metric: open_interest, symbol: BTC/USDT:USDT, interval: 1h}
"""

BINANCE_UNIVERSE = """
exchanges:
  binance:
    driver: binance
    options: {fetchMarkets: {types: [spot, linear]}}
    symbols: [BTC/USDT]
    intervals: [1h]
    orderbook_depth: 5
    metrics:
      - {metric: funding_rate, symbol: BTC/USDT:USDT}
      - {metric: open_interest, symbol: BTC/USDT:USDT, interval: 1h}
"""


def universe_file(tmp_path: Path, text: str) -> str:
    """Write `text` (dedented) as `universe.yaml` under `tmp_path`; its path for `ExchangeResource`."""
    path = tmp_path / "universe.yaml"
    path.write_text(textwrap.dedent(text))
    return str(path)
