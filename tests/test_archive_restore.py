"""A replaced candle is archived by the upsert and brought back by `restore` (which is itself undoable)."""

from __future__ import annotations

import pandas as pd
import pytest
import sqlalchemy as sa
from quality_data import NOW, candles, table

from market_warehouse.resources.warehouse.load import load_frame
from market_warehouse.resources.warehouse.restore import restore


def _candle(engine, time: pd.Timestamp) -> pd.Series:
    stored = table(engine, "ohlcv")
    stored["time"] = pd.to_datetime(stored["time"], utc=True)
    return stored.set_index("time").loc[time]


def _key(frame: pd.DataFrame, i: int) -> dict:
    row = frame.iloc[i]
    return {
        "exchange": row["exchange"],
        "symbol": row["symbol"],
        "interval": row["interval"],
        "time": row["time"],
    }


def test_restore_brings_back_a_replaced_candle(engine):
    original = candles(5)
    load_frame(engine, "ohlcv", original, run_id="load-1", now=NOW)
    before = _candle(engine, original["time"].iloc[2])

    corrected = original.copy()
    corrected.loc[2, ["close", "high"]] = [before["close"] * 1.01, before["close"] * 1.02]
    result = load_frame(engine, "ohlcv", corrected, run_id="load-2", now=NOW)
    assert result.updated >= 1
    assert _candle(engine, original["time"].iloc[2])["close"] == pytest.approx(before["close"] * 1.01)

    archive = table(engine, "timeseries_archive", "ORDER BY id")
    replaced = archive.loc[
        archive["row_key"].map(lambda k: pd.Timestamp(k["time"]) == original["time"].iloc[2])
    ]
    assert len(replaced) == 1 and replaced["archived_by"].iloc[0] == "load-2"
    assert replaced["row_data"].iloc[0]["close"] == pytest.approx(before["close"])
    audit = table(engine, "audit_log", "ORDER BY id")
    change = audit.loc[(audit["table_name"] == "ohlcv") & (audit["changed_by"] == "load-2")]
    assert "close" in change["changed_fields"].iloc[0] and "high" in change["changed_fields"].iloc[0]

    restored = restore(engine, table="ohlcv", key=_key(original, 2), restored_by="alice")
    assert restored.restored == 1 and restored.updated == 1
    after = _candle(engine, original["time"].iloc[2])
    for column in ("open", "high", "low", "close", "volume", "quality_score"):
        assert after[column] == pytest.approx(before[column]), column

    archive = table(engine, "timeseries_archive", "ORDER BY id")
    assert archive.set_index("id").loc[restored.archive_ids[0], "restored_at"] is not None
    # The corrected version was archived in turn: the restore can be undone the same way.
    undo = archive.loc[archive["archived_by"] == "alice"]
    assert len(undo) == 1 and undo["row_data"].iloc[0]["close"] == pytest.approx(before["close"] * 1.01)
    audit = table(engine, "audit_log", "ORDER BY id")
    mine = audit.loc[audit["changed_by"] == "alice"]
    assert list(mine["operation"]) == ["update"] and mine["reason"].iloc[0].startswith("restored from")

    restore(engine, undo["id"].tolist(), restored_by="alice")
    assert _candle(engine, original["time"].iloc[2])["close"] == pytest.approx(before["close"] * 1.01)


def test_restore_reinserts_a_row_that_is_gone_and_records_it(engine):
    original = candles(3)
    load_frame(engine, "ohlcv", original, now=NOW)
    changed = original.copy()
    changed.loc[1, "volume"] = 9.0
    load_frame(engine, "ohlcv", changed, run_id="fix", now=NOW)
    with engine.begin() as conn:
        conn.execute(
            sa.text("DELETE FROM ohlcv WHERE time = :t"), {"t": original["time"].iloc[1].to_pydatetime()}
        )
    archive_id = int(table(engine, "timeseries_archive")["id"].iloc[0])

    result = restore(engine, [archive_id], restored_by="bob", reason="undo bad fix")
    assert (result.inserted, result.updated) == (1, 0)
    assert _candle(engine, original["time"].iloc[1])["volume"] == pytest.approx(original["volume"].iloc[1])
    audit = table(engine, "audit_log", "ORDER BY id")
    row = audit.loc[audit["changed_by"] == "bob"].iloc[0]
    assert row["operation"] == "insert" and row["reason"] == f"undo bad fix #{archive_id}"
    assert row["row_key"]["symbol"] == "BTC/USDT"


def test_restore_refuses_unknown_rows(engine):
    with pytest.raises(LookupError):
        restore(engine, [12345])
    with pytest.raises(LookupError, match="no archived version"):
        restore(engine, table="ohlcv", key=_key(candles(1), 0))
