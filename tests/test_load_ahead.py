"""`load_frame` scores a batch ahead of its transaction, while the previous batch is written.

Its history is then read on another connection before the previous batch is committed and completed with
that batch's rows (`with_written`). That must change nothing: on every backend the warehouse ends up with
the same candles, scores, flags, anomalies, quarantine, audit_log and timeseries_archive rows as when each
batch reads its history in its own transaction after the previous one committed (the path before, kept
for batches that do not follow the previous one in time). The frames here interleave their series, so
every batch's warm-up lies in the batch before it; one frame comes in reverse time order (no batch
follows the previous one: the in-transaction path). The load holds its range for the whole call.
"""

from __future__ import annotations

import json
import threading

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from quality_data import NOW, START, candles, table

from market_warehouse.resources.quality.rules import load_rules
from market_warehouse.resources.quality.scores import ScoreConfig, follows, load_history, with_written
from market_warehouse.resources.quality.split import split_frame
from market_warehouse.resources.warehouse.load import load_batch, load_frame

CONFIG = ScoreConfig(window=20, min_periods=5)
TABLES = ("ohlcv", "anomalies", "quarantine", "audit_log", "timeseries_archive")
# Written by the server at write time: differ between two runs of the same loads.
VOLATILE = {"id", "ingested_at", "detected_at", "created_at", "changed_at", "archived_at"}


def _by_time(*frames: pd.DataFrame) -> pd.DataFrame:
    return pd.concat(frames, ignore_index=True).sort_values(["time", "symbol"], kind="stable")


def _loads() -> list[tuple[str, pd.DataFrame, int]]:
    """(run id, frame, batch rows): history, then a re-load with changes, spikes, a bad row and a new
    series, then a frame in reverse time order."""
    btc = candles(300, symbol="BTC/USDT", seed=1)
    eth = candles(200, symbol="ETH/USDT", seed=2, price=50.0)
    history = _by_time(btc, eth)
    again = history.iloc[-160:].copy()
    again.loc[again.index[::7], "volume"] += 0.25
    for row in again.index[[20, 90]]:  # spikes: anomalies in batches whose warm-up is the batch before
        again.loc[row, ["close", "high"]] = again.loc[row, "close"] * 1.3, again.loc[row, "close"] * 1.31
    again.loc[again.index[40], "low"] = -1.0  # quarantined
    later = candles(
        60, start=START + pd.Timedelta(hours=300), symbol="BTC/USDT", seed=3, price=btc["close"].iat[-1]
    )
    sol = candles(60, start=START + pd.Timedelta(hours=250), symbol="SOL/USDT", seed=4, price=20.0)
    reload = _by_time(again, later, sol)
    backwards = candles(80, start=START + pd.Timedelta(hours=360), symbol="BTC/USDT", seed=5, price=90.0)
    backwards = backwards.iloc[::-1]
    return [("history", history, 37), ("reload", reload, 25), ("backwards", backwards, 15)]


def _one_batch_at_a_time(engine: sa.Engine, run_id: str, frame: pd.DataFrame, batch_rows: int) -> None:
    """The reference: each batch split, scored from a history read and written in its own transaction."""
    frame = frame.reset_index(drop=True)
    with engine.connect() as conn:
        rules = load_rules(conn, "ohlcv")
    for start in range(0, len(frame), batch_rows):
        with engine.begin() as conn:
            load_batch(
                conn,
                "ohlcv",
                frame.iloc[start : start + batch_rows],
                rules,
                run_id=run_id,
                now=NOW,
                score_config=CONFIG,
            )


def _without_volatile(value: object) -> object:
    if isinstance(value, str) and value.startswith("{"):
        value = json.loads(value)
    if isinstance(value, dict):
        return json.dumps({k: v for k, v in value.items() if k not in VOLATILE}, sort_keys=True)
    if isinstance(value, list):
        return tuple(value)
    return value


def _snapshot(engine: sa.Engine) -> dict[str, pd.DataFrame]:
    out = {}
    for name in TABLES:
        frame = table(engine, name)
        frame = frame[[c for c in frame.columns if c not in VOLATILE]].astype(object)
        frame = frame.map(_without_volatile).astype(str)  # None and values sort together as text
        out[name] = frame.sort_values(list(frame.columns)).reset_index(drop=True)
    return out


def _empty(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        conn.exec_driver_sql("TRUNCATE " + ", ".join(TABLES))


def test_scoring_ahead_writes_what_scoring_in_the_transaction_writes(any_engine):
    loads = _loads()
    results = [
        load_frame(any_engine, "ohlcv", frame, run_id=run_id, batch_rows=rows, now=NOW, score_config=CONFIG)
        for run_id, frame, rows in loads
    ]
    ahead = _snapshot(any_engine)
    _empty(any_engine)
    for run_id, frame, rows in loads:
        _one_batch_at_a_time(any_engine, run_id, frame, rows)
    reference = _snapshot(any_engine)

    assert results[1].quarantined == 1 and results[1].updated > 0 and results[1].anomalies >= 2
    assert len(reference["audit_log"]) == results[1].updated and len(reference["anomalies"]) >= 2
    for name in TABLES:
        pd.testing.assert_frame_equal(ahead[name], reference[name], obj=name)


def test_with_written_is_the_history_read_after_the_write(engine):
    """The history of a batch read before the previous batch is stored, completed with that batch's rows,
    equals the history read once it is stored (warm-up rows: what the scores read of them)."""
    frame = _by_time(candles(120, symbol="BTC/USDT", seed=1), candles(40, symbol="ETH/USDT", seed=2))
    frame = frame.reset_index(drop=True)
    first, previous, batch = frame.iloc[:60], frame.iloc[60:100], frame.iloc[100:]
    load_frame(engine, "ohlcv", first, run_id="a", now=NOW, score_config=CONFIG)
    with engine.connect() as conn:
        rules = load_rules(conn, "ohlcv")
        written = split_frame("ohlcv", previous, rules, now=NOW).good
        good = split_frame("ohlcv", batch, rules, now=NOW).good
        assert follows("ohlcv", written, good) and not follows("ohlcv", good, written)
        read = load_history(conn, "ohlcv", good, CONFIG)
        early = with_written("ohlcv", read, good, written, CONFIG)
        other = split_frame("ohlcv", candles(5, symbol="SOL/USDT"), rules, now=NOW).good
        assert with_written("ohlcv", read, good, other, CONFIG) is read  # no common series: nothing added
    load_frame(engine, "ohlcv", previous, run_id="b", now=NOW, score_config=CONFIG)
    with engine.connect() as conn:
        late = load_history(conn, "ohlcv", good, CONFIG)

    def comparable(history: pd.DataFrame) -> pd.DataFrame:
        columns = ["series", "symbol", "time", "open", "high", "low", "close", "volume", "in_range"]
        out = history[columns].astype({"symbol": str})
        return out.sort_values(["series", "time"]).reset_index(drop=True)

    assert (late.groupby("series").size() == CONFIG.window + 1).all()
    pd.testing.assert_frame_equal(comparable(early), comparable(late))


def test_the_range_is_held_for_the_whole_load(engine, monkeypatch):
    """Another loader of the same range waits until the whole call is done, not only the current batch."""
    from market_warehouse.resources.warehouse import load as load_module

    frame = candles(200, symbol="BTC/USDT", seed=1)
    other = candles(10, start=START + pd.Timedelta(hours=50), symbol="ETH/USDT", seed=2)
    load_frame(engine, "ohlcv", other.iloc[:1], run_id="warm", now=NOW)  # rules synced, partitions made
    order: list[str] = []
    started = threading.Event()
    original = load_module.load_batch

    def slow_batch(*args, **kwargs):
        result = original(*args, **kwargs)
        if threading.current_thread() is threading.main_thread():
            order.append("batch")
            started.set()
            threading.Event().wait(0.2)  # the competitor has time to get in between batches
        return result

    def competitor() -> None:
        started.wait(10)
        load_frame(engine, "ohlcv", other, run_id="other", now=NOW)
        order.append("other")

    monkeypatch.setattr(load_module, "load_batch", slow_batch)
    thread = threading.Thread(target=competitor)
    thread.start()
    try:
        result = load_frame(engine, "ohlcv", frame, run_id="main", batch_rows=50, now=NOW)
    finally:
        thread.join(30)
    assert result.inserted == 200 and result.batches == 4
    assert order == ["batch"] * 4 + ["other"]


@pytest.mark.parametrize("rows", [0, 1])
def test_follows_needs_each_common_series_to_start_after(rows):
    earlier = candles(5, symbol="BTC/USDT").assign(price="trade")
    later = candles(5, start=START + pd.Timedelta(hours=5 - rows), symbol="BTC/USDT").assign(price="trade")
    unrelated = candles(3, start=START - pd.Timedelta(hours=10), symbol="ETH/USDT").assign(price="trade")
    other_kind = later.assign(price="mark")
    assert follows("ohlcv", earlier, later) is (rows == 0)
    assert follows("ohlcv", earlier, pd.concat([later, unrelated])) is (rows == 0)
    assert follows("ohlcv", earlier, unrelated) and follows("ohlcv", earlier.iloc[:0], later)
    assert follows("ohlcv", earlier, other_kind)  # another price kind is another series
    assert np.all(later["time"] >= START)
