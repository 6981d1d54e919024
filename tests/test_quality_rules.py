"""Row-level rules before the write: what is stored, what is quarantined (with which rule), nothing lost."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from quality_data import NOW, START, candles, count, table

from market_warehouse.resources.quality.rules import BUILTIN_SUITES, code_rules, load_rules, sync_rules_to_db
from market_warehouse.resources.quality.split import StructuralError
from market_warehouse.resources.warehouse.load import LoadResult, load_frame


def _quarantine(engine) -> pd.DataFrame:
    return table(engine, "quarantine", "ORDER BY id")


def _stored_times(engine, name: str = "ohlcv") -> list[pd.Timestamp]:
    return list(pd.to_datetime(table(engine, name, "ORDER BY time")["time"], utc=True))


def _balanced(result: LoadResult) -> bool:
    return result.fetched == result.inserted + result.updated + result.unchanged + result.quarantined


def test_each_ohlcv_violation_is_quarantined_with_its_rule(engine):
    frame = candles(16).astype({"open": object, "time": object})
    frame["time"] = frame["time"].map(lambda t: t.isoformat())  # strings, as from JSON files
    broken = {
        0: ("high", frame.at[0, "open"] * 0.5, "high_ge_open"),
        1: ("low", frame.at[1, "close"] * 2, "low_le_open"),  # low above open and close: first rule wins
        2: ("volume", -1.0, "volume_non_negative"),
        3: ("close", 0.0, "close_positive"),
        4: ("close", np.nan, "close_not_null"),
        5: ("time", "2024-06-01T05:07:00+00:00", "time_aligned_to_interval"),
        6: ("time", "2030-01-01T00:00:00+00:00", "time_not_future"),
        7: ("open", "abc", "parseable"),
        8: ("time", "yesterday-ish", "parseable"),
        9: ("time", "2024-06-01T09:00:00", "parseable"),  # no time zone
        10: ("interval", "1hour", "interval_format"),
    }
    for row, (column, value, _) in broken.items():
        frame.at[row, column] = value
    dup = frame.iloc[[11]].copy()
    dup["close"] = dup["close"] * 1.0001  # a later row with the same key wins; the earlier is quarantined
    dup["high"] = dup[["high", "close"]].max(axis=1)
    frame = pd.concat([frame, dup], ignore_index=True)

    result = load_frame(
        engine, "ohlcv", frame, run_id="run-1", partition_key="2024-06-01", source="test", now=NOW
    )

    expected = {rule: 0 for *_, rule in broken.values()}
    for *_, rule in broken.values():
        expected[rule] += 1
    expected["unique_key"] = 1
    assert result.quarantine_reasons == expected
    assert result.quarantined == len(broken) + 1
    assert result.inserted == 17 - result.quarantined
    assert _balanced(result)

    q = _quarantine(engine)
    assert len(q) == result.quarantined
    assert set(q["run_id"]) == {"run-1"} and set(q["partition_key"]) == {"2024-06-01"}
    assert set(q["source"]) == {"test"}
    by_rule = q.groupby("rule")
    for row, (_column, _value, rule) in broken.items():
        rows = by_rule.get_group(rule)
        assert any(r["time"] == frame.at[row, "time"] for r in rows["row_data"]), rule
        assert rows["message"].str.contains(rule).all()
    assert "open=abc" in by_rule.get_group("parseable")["message"].str.cat()
    assert "without time zone" in by_rule.get_group("parseable")["message"].str.cat()
    # Raw values kept JSON-safe: NaN -> null, timestamps as given.
    null_close = by_rule.get_group("close_not_null")["row_data"].iloc[0]
    assert null_close["close"] is None and null_close["time"] == frame.at[4, "time"]
    unique = by_rule.get_group("unique_key").iloc[0]
    assert unique["key"]["time"] == frame.at[11, "time"]
    assert unique["row_data"]["close"] == pytest.approx(frame.at[11, "close"])

    stored = table(engine, "ohlcv")
    good_rows = sorted(set(range(16)) - set(broken))
    assert sorted(pd.to_datetime(stored["time"], utc=True)) == sorted(
        pd.to_datetime(frame.loc[good_rows, "time"], utc=True)
    )
    winner = stored.loc[pd.to_datetime(stored["time"], utc=True) == pd.Timestamp(frame.at[11, "time"])]
    assert winner["close"].iloc[0] == pytest.approx(dup["close"].iloc[0])
    assert set(stored["source"]) == {"test"}


def test_message_names_rule_and_every_failing_value(engine):
    frame = candles(3)
    frame.loc[1, ["high", "volume"]] = [frame.loc[1, "low"] * 0.9, -5.0]
    result = load_frame(engine, "ohlcv", frame, now=NOW)
    assert result.quarantine_reasons == {"volume_non_negative": 1}  # suite order: volume before pairs
    message = _quarantine(engine)["message"].iloc[0]
    assert "volume_non_negative: volume=-5.0" in message
    assert "high_ge_open: high=" in message and "high_ge_low" in message


def test_rerun_writes_nothing_and_totals_balance_across_batches(engine):
    frame = candles(23)
    frame.loc[[3, 17], "volume"] = -1.0
    first = load_frame(engine, "ohlcv", frame, batch_rows=5, run_id="a", now=NOW)
    assert first.batches == 5 and first.inserted == 21 and first.quarantined == 2 and _balanced(first)

    again = load_frame(engine, "ohlcv", frame, batch_rows=5, run_id="b", now=NOW)
    assert (again.inserted, again.updated, again.unchanged, again.quarantined) == (0, 0, 21, 2)
    assert count(engine, "quarantine") == 2  # the same rejected rows are not quarantined twice
    assert count(engine, "ohlcv") == 21

    changed = frame.copy()
    changed.loc[5, "close"] *= 1.0005
    changed.loc[5, "high"] = changed.loc[5, ["high", "close"]].max()
    third = load_frame(engine, "ohlcv", changed, batch_rows=50, run_id="c", now=NOW)
    assert third.updated >= 1 and _balanced(third)
    assert third.fetched == 23 and third.quarantined == 2


def test_warning_rule_keeps_the_row_and_lowers_its_score(engine):
    frame = candles(4)
    frame.loc[3, "symbol"] = "BTCUSDT"  # not a unified symbol: warning (last row: no gap in BTC/USDT)
    result = load_frame(engine, "ohlcv", frame, now=NOW)
    assert result.quarantined == 0 and result.inserted == 4
    assert result.warnings == {"symbol_format": 1}
    stored = table(engine, "ohlcv").set_index("symbol")
    assert stored.loc["BTCUSDT", "quality_score"] < stored.loc["BTC/USDT", "quality_score"].min()


def test_rule_inserted_in_validation_rules_changes_the_next_load(engine):
    first = candles(6)
    assert load_frame(engine, "ohlcv", first, now=NOW).quarantined == 0

    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO validation_rules (dataset, name, kind, column_name, params, severity) VALUES "
                "('ohlcv', 'volume_cap', 'range', 'volume', '{\"max\": 1.5}', 'error'),"
                "('ohlcv', 'symbol_is_btc', 'regex', 'symbol', '{\"regex\": \"^BTC/\"}', 'warning'),"
                "('ohlcv', 'close_below_high', 'pair', 'close', '{\"other\": \"high\", \"op\": \"<\"}', 'error')"
            )
        )
        # Operators may also retune built-ins: switch one off.
        conn.execute(
            sa.text(
                "UPDATE validation_rules SET enabled = false WHERE dataset='ohlcv' AND name='high_ge_open'"
            )
        )

    second = candles(6, start=START + pd.Timedelta(hours=6), seed=1)
    second["volume"] = [1.0, 1.2, 1.6, 1.4, 3.0, 1.1]
    second.loc[1, "symbol"] = "ETH/USDT"
    second.loc[3, "high"] = second.loc[3, "close"]  # close == high: fails close_below_high
    second.loc[5, "open"] = second.loc[5, "high"] * 1.0005  # high < open: that built-in is disabled
    result = load_frame(engine, "ohlcv", second, now=NOW)
    assert result.quarantine_reasons == {"volume_cap": 2, "close_below_high": 1}
    assert result.warnings.get("symbol_is_btc") == 1
    stored = table(engine, "ohlcv")
    assert "ETH/USDT" in set(stored["symbol"])
    assert len(stored) == 6 + 3
    assert (stored["open"] > stored["high"]).sum() == 1


def test_sync_rules_to_db_is_idempotent_and_keeps_operator_settings(engine):
    with engine.begin() as conn:
        inserted = sync_rules_to_db(conn)
        assert inserted == sum(len(code_rules(d)) for d in BUILTIN_SUITES)
        conn.execute(
            sa.text("UPDATE validation_rules SET severity='warning' WHERE name='volume_non_negative'")
        )
        assert sync_rules_to_db(conn) == 0
        kinds = dict(
            conn.execute(
                sa.text("SELECT name, params->>'kind' FROM validation_rules WHERE dataset='ohlcv'")
            ).all()
        )
        rules = {r.name: r for r in load_rules(conn, "ohlcv")}
    assert kinds["time_aligned_to_interval"] == "aligned_to_interval"
    assert rules["volume_non_negative"].severity == "warning"
    assert rules["time_aligned_to_interval"].kind == "aligned_to_interval"


def test_structural_problems_raise_before_writing(engine):
    with pytest.raises(StructuralError, match="key column.*symbol"):
        load_frame(engine, "ohlcv", candles(3).drop(columns="symbol"), now=NOW)
    naive = candles(3)
    naive["time"] = naive["time"].dt.tz_localize(None)
    with pytest.raises(StructuralError, match="naive"):
        load_frame(engine, "ohlcv", naive, now=NOW)
    with pytest.raises(StructuralError, match="not in the table: colour"):
        load_frame(engine, "ohlcv", candles(3).assign(colour="red"), now=NOW)
    assert count(engine, "ohlcv") == 0 and count(engine, "quarantine") == 0


def _load_one(engine, dataset: str, frame: pd.DataFrame) -> LoadResult:
    result = load_frame(engine, dataset, frame, run_id="r", now=NOW)
    assert _balanced(result)
    return result


def test_market_trades_rules(engine):
    t = START + pd.to_timedelta(np.arange(5), unit="s")
    frame = pd.DataFrame(
        {
            "exchange": "binance",
            "symbol": "BTC/USDT",
            "trade_id": ["1", "2", "3", "4", "5"],
            "time": t,
            "price": [100.0, 100.5, -1.0, 101.0, 100.0],
            "amount": [0.1, 0.2, 0.3, 0.4, 0.5],
            "cost": [10.0, 20.1, -0.3, 40.4, 99.0],
            "side": ["buy", "sell", "buy", "hold", "sell"],
        }
    )
    result = _load_one(engine, "market_trades", frame)
    assert result.quarantine_reasons == {"price_positive": 1, "side_valid": 1}
    assert result.warnings == {"cost_consistent": 1}
    assert count(engine, "market_trades") == 3


def test_orderbook_rules(engine):
    def book(bid, ask, bids, asks, spread=None):
        return {"best_bid": bid, "best_ask": ask, "bids": bids, "asks": asks, "spread": spread}

    rows = [
        book(100.0, 100.5, [[100.0, 1], [99.5, 2]], [[100.5, 1], [101.0, 1]], 0.5),
        book(100.6, 100.5, [[100.6, 1]], [[100.5, 1]], -0.1),  # crossed
        book(100.0, 100.5, [[99.5, 1], [100.0, 2]], [[100.5, 1]], 0.5),  # bids ascending
        book(100.0, 100.5, [[100.0, 1]], [[100.5, 1]], 0.7),  # spread inconsistent
        book(100.0, 100.5, [[100.1, 1]], [[100.5, 1]], 0.5),  # best bid != first level: warning
    ]
    frame = pd.DataFrame(rows)
    frame.insert(0, "exchange", "binance")
    frame.insert(1, "symbol", "BTC/USDT")
    frame.insert(2, "time", START + pd.to_timedelta(np.arange(5), unit="s"))
    result = _load_one(engine, "orderbook_snapshots", frame)
    assert result.quarantine_reasons == {"bid_below_ask": 1, "levels_sorted": 1, "spread_consistent": 1}
    assert result.warnings == {"best_matches_levels": 1}
    stored = table(engine, "orderbook_snapshots", "ORDER BY time")
    assert len(stored) == 2 and stored["bids"].iloc[0] == [[100.0, 1], [99.5, 2]]
    crossed = _quarantine(engine).set_index("rule").loc["bid_below_ask"]
    assert crossed["row_data"]["asks"] == [[100.5, 1]]
    assert "best_bid=100.6 best_ask=100.5" in crossed["message"]


def test_metrics_features_forecasts_and_series_rules(engine):
    metrics = pd.DataFrame(
        {
            "exchange": "binance",
            "symbol": "BTC/USDT",
            "interval": "1h",
            "time": START + pd.to_timedelta([0, 1, 2], unit="h"),
            "last_price": [100.0, 101.0, 102.0],
            "high_24h": [110.0, 90.0, 110.0],
            "low_24h": [90.0, 95.0, 90.0],
            "volume_24h": [1.0, 2.0, -3.0],
        }
    )
    assert _load_one(engine, "market_metrics", metrics).quarantine_reasons == {
        "high_24h_ge_low_24h": 1,
        "volume_24h_non_negative": 1,
    }

    features = pd.DataFrame(
        {
            "exchange": "binance",
            "symbol": "BTC/USDT",
            "interval": "1h",
            "feature_set": "core_v1",
            "time": START + pd.to_timedelta([0, 1, 2], unit="h"),
            "rsi": [50.0, 150.0, 30.0],
            "bb_upper": [1.0, 1.0, 0.5],
            "bb_lower": [0.5, 0.5, 1.0],
        }
    )
    assert _load_one(engine, "features", features).quarantine_reasons == {
        "rsi_range": 1,
        "bb_upper_ge_bb_lower": 1,
    }

    gen = START
    forecasts = pd.DataFrame(
        {
            "model_id": 1,
            "symbol": "BTC/USDT",
            "interval": "1h",
            "generated_at": gen,
            "target_time": gen + pd.to_timedelta([1, 2, 3, 0], unit="h"),
            "horizon_step": [1, 2, 3, 0],
            "point": [100.0, 101.0, 102.0, 100.0],
            "lower_80": [99.0, 100.0, 103.0, 99.0],
            "upper_80": [101.0, 102.0, 101.0, 101.0],
        }
    )
    assert _load_one(engine, "forecasts", forecasts).quarantine_reasons == {
        "upper_80_ge_lower_80": 1,
        "horizon_step_positive": 1,
    }

    with engine.begin() as conn:
        source_id = conn.execute(
            sa.text("INSERT INTO sources (name, kind) VALUES ('fear_greed', 'file') RETURNING id")
        ).scalar()
    series = pd.DataFrame(
        {
            "source_id": source_id,
            "time": START + pd.to_timedelta([0, 1, 2], unit="D"),
            "value": [50.0, np.nan, 40.0],
        }
    )
    result = _load_one(engine, "timeseries_data", series)
    assert result.quarantine_reasons == {"has_value": 1}
    stored = table(engine, "timeseries_data")
    assert stored["quality_score"].notna().all()


def test_quarantine_row_data_is_valid_json_for_odd_values(engine):
    frame = candles(2).astype({"volume": object})
    frame.at[0, "volume"] = float("inf")
    load_frame(engine, "ohlcv", frame, now=NOW)
    row = _quarantine(engine).iloc[0]
    assert row["rule"] == "parseable" and row["row_data"]["volume"] == "inf"
    json.dumps(row["row_data"])


def test_load_and_restore_on_every_backend(any_engine):
    """The same split, quarantine, scores, upsert and restore on PostgreSQL and both TimescaleDB flavours."""
    from market_warehouse.resources.warehouse.restore import restore

    frame = candles(30)
    frame.loc[[4, 9], "volume"] = -1.0
    first = load_frame(any_engine, "ohlcv", frame, run_id="a", now=NOW)
    assert (first.inserted, first.quarantined) == (28, 2) and _balanced(first)
    again = load_frame(any_engine, "ohlcv", frame, run_id="b", now=NOW)
    assert (again.inserted, again.updated, again.unchanged, again.quarantined) == (0, 0, 28, 2)
    assert count(any_engine, "quarantine") == 2

    changed = frame.copy()
    changed.loc[12, "volume"] = 7.5
    assert load_frame(any_engine, "ohlcv", changed, run_id="c", now=NOW).updated >= 1
    key = {k: frame.at[12, k] for k in ("exchange", "symbol", "interval", "time")}
    assert restore(any_engine, table="ohlcv", key=key, restored_by="t").updated == 1
    stored = table(any_engine, "ohlcv")
    stored["time"] = pd.to_datetime(stored["time"], utc=True)
    assert stored.set_index("time").loc[frame.at[12, "time"], "volume"] == pytest.approx(
        frame.at[12, "volume"]
    )
    assert stored["quality_score"].between(0, 100).all()


def test_gx_suite_checks_the_candle_key_of_a_frame_without_price():
    """A frame with no `price` column (trade archive files) is all 'trade': its unique-key expectation runs over
    the key columns present instead of being skipped, so two candles of one minute still fail it."""
    from market_warehouse.resources.quality.expectations import validate
    from market_warehouse.resources.quality.rules import code_rules

    frame = candles(3).drop(columns=["price"], errors="ignore")
    frame = pd.concat([frame, frame.iloc[[1]]], ignore_index=True)
    result = validate("ohlcv", frame, code_rules("ohlcv"), now=NOW)
    failed = {f["rule"] for f in result["failed"]}
    assert "unique_key" in failed and not result["success"]
    assert "unique_key" not in {
        f["rule"] for f in validate("ohlcv", frame.iloc[:3], code_rules("ohlcv"), now=NOW)["failed"]
    }
