"""A landed file's batches reach `load_frame` several at a time (`landing._Chunk`, so that its next batch is
validated and encoded while the current one is written): counts, quarantine, progress and the ledger stay
per file and per batch as when each batch was loaded on its own, and a failure keeps what was read before it.
"""

from __future__ import annotations

import pandas as pd
import sqlalchemy as sa

from market_warehouse.resources.files import ledger
from market_warehouse.resources.files.landing import BATCHES_PER_LOAD, FileReport, load_landing_folder
from market_warehouse.resources.files.layouts import read_file
from tests.archives_data import NOW, candles, write

BATCH = 5


def csv_text(frame: pd.DataFrame) -> bytes:
    out = frame.assign(date=frame["date"].astype("int64") // 10**6).rename(columns={"date": "timestamp"})
    return out.to_csv(index=False).encode()


def scalar(engine: sa.Engine, query: str):
    with engine.connect() as conn:
        return conn.execute(sa.text(query)).scalar()


class Batches:
    """An observer that keeps the rows of each batch it is told about."""

    def __init__(self) -> None:
        self.rows: list[int] = []

    def started(self, relative: str, size_bytes: int) -> None:
        pass

    def batch(self, report: FileReport, rows: int) -> None:
        self.rows.append(rows)

    def done(self, report: FileReport) -> None:
        pass


def test_a_file_of_several_chunks_counts_every_batch_and_quarantines_its_bad_row(engine, tmp_path):
    n = BATCH * (2 * BATCHES_PER_LOAD + 3) - 2  # two full chunks, then three batches, the last one short
    frame = candles(n).astype({"open": object})
    frame.loc[60, "open"] = "n/a"  # in the second chunk
    root = tmp_path / "landing"
    write(root, "binance/BTC_USDT-1m.csv", csv_text(frame))
    seen = Batches()
    report = load_landing_folder(engine, root, run_id="chunks", batch_rows=BATCH, now=NOW, observer=seen)
    file = report.files[0]
    assert (file.status, file.fetched, file.inserted, file.quarantined) == ("partial", n, n - 1, 1)
    assert file.balanced and file.quarantine_reasons == {"non_numeric": 1}
    assert seen.rows == [BATCH] * (n // BATCH) + [n % BATCH]  # progress per batch, in file order
    assert scalar(engine, "SELECT count(*) FROM ohlcv") == n - 1
    assert scalar(engine, "SELECT count(*) FROM quarantine") == 1
    assert scalar(engine, "SELECT max(time) FROM ohlcv") == frame["date"].iloc[-1]
    with engine.connect() as conn:
        entry = ledger.latest_entries(conn)["binance/BTC_USDT-1m.csv"]
    assert (entry.status, entry.rows_loaded, entry.rows_quarantined) == ("partial", n - 1, 1)


def test_a_read_failure_after_a_full_chunk_keeps_every_batch_read_before_it(engine, tmp_path):
    before = BATCH * (BATCHES_PER_LOAD + 2)  # one chunk stored when full, two batches waiting
    frame = pd.concat([candles(before), candles(10, step="1h", start=candles(before)["date"].iloc[-1])])
    root = tmp_path / "landing"
    write(root, "binance/ETH_USDT.csv", csv_text(frame.iloc[: before + 10]))
    file = load_landing_folder(engine, root, batch_rows=BATCH, now=NOW).files[0]
    assert (file.status, file.fetched, file.inserted) == ("failed", before, before)
    assert f"(the file's first {before} rows were loaded before this and stay;" in file.error
    assert scalar(engine, "SELECT count(*) FROM ohlcv") == before


def test_candles_carry_their_names_as_arrow_strings(tmp_path):
    """Text columns of one value per file are Arrow strings: the warehouse's split, grouping and null
    checks then run in Arrow, not once per row in Python (a third of a batch's validation when they were
    Python objects)."""
    path = write(tmp_path, "binance/BTC_USDT-1m.csv", csv_text(candles(12)))
    parsed = next(read_file(path, relative_to=tmp_path, batch_rows=BATCH))
    assert {name: str(parsed.frame[name].dtype) for name in ("exchange", "symbol", "interval")} == {
        "exchange": "str",
        "symbol": "str",
        "interval": "str",
    }
    assert parsed.frame[["exchange", "symbol", "interval"]].iloc[0].tolist() == ["binance", "BTC/USDT", "1m"]
