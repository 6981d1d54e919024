"""Work per batch does not grow with the table.

Every statement of the load path that meets a batch with its table carries the batch's time range as
constants, so the planner reads only the partitions (chunks) of the batch and of its warm-up. Checked here
on each backend by EXPLAIN (which children of `ohlcv` a plan reads), and the bounded statements are shown
to audit and score exactly as reads of the whole table would: the warm-up and stored versions they return
equal the ones taken from a full read of the table in pandas, and a re-load's audit_log and
timeseries_archive rows are exactly the rows that changed.
"""

from __future__ import annotations

import json
from datetime import timedelta

import numpy as np
import pandas as pd
import sqlalchemy as sa
from psycopg2 import sql as pgsql
from quality_data import NOW, candles, table

from market_warehouse.resources.quality.rules import load_rules
from market_warehouse.resources.quality.scores import (
    SCORED,
    ScoreConfig,
    history_statement,
    load_history,
    score_frame,
)
from market_warehouse.resources.quality.scores import series_bounds as bounds_of
from market_warehouse.resources.quality.split import split_frame
from market_warehouse.resources.warehouse.load import load_frame
from market_warehouse.resources.warehouse.upsert import (
    STRATEGIES,
    _load_order,
    _merge_params,
    _merge_statement,
    _prepare,
    _server,
    _stage,
    _strategy,
    _table_meta,
    validate_frame,
)

CONFIG = ScoreConfig(window=30, min_periods=10)
HISTORY_START = pd.Timestamp("2024-01-04", tz="UTC")  # a Thursday: a 7-day chunk boundary
WEEKS = 12
DAY = HISTORY_START + pd.Timedelta(weeks=8, days=3)  # mid-chunk, well inside the history
KEY = ["exchange", "symbol", "interval", "time"]
VALUES = list(SCORED["ohlcv"].value_columns)


def _history() -> pd.DataFrame:
    """BTC: 12 weeks of 1h candles; ETH: its first 2 weeks only (a long gap before the batch)."""
    btc = candles(24 * 7 * WEEKS, start=HISTORY_START, symbol="BTC/USDT", seed=1)
    eth = candles(24 * 14, start=HISTORY_START, symbol="ETH/USDT", seed=2, price=50.0)
    return pd.concat([btc, eth], ignore_index=True)


def _reload_batch(history: pd.DataFrame) -> pd.DataFrame:
    """DAY again for BTC with some changes and a spike, new rows for ETH (after its gap) and a new SOL."""
    btc = history[(history["symbol"] == "BTC/USDT") & (history["time"].dt.floor("D") == DAY)].copy()
    btc.loc[btc.index[::6], "volume"] += 0.5  # 4 changed rows
    spike = btc.index[12]
    btc.loc[spike, ["close", "high"]] = btc.loc[spike, "close"] * 1.2, btc.loc[spike, "close"] * 1.21
    eth = candles(24, start=DAY, symbol="ETH/USDT", seed=3, price=50.0)
    sol = candles(24, start=DAY, symbol="SOL/USDT", seed=4, price=20.0)
    return pd.concat([btc, eth, sol], ignore_index=True)


def _children_with_data(conn: sa.Connection) -> dict[str, tuple[pd.Timestamp, pd.Timestamp]]:
    """Partitions (native) or chunks (TimescaleDB) of ohlcv holding rows, with their first and last time."""
    children = conn.execute(
        sa.text(
            "SELECT n.nspname, c.relname FROM pg_inherits AS i JOIN pg_class AS c ON c.oid = i.inhrelid "
            "JOIN pg_namespace AS n ON n.oid = c.relnamespace WHERE i.inhparent = CAST('ohlcv' AS regclass)"
        )
    ).all()
    dbapi = conn.connection.dbapi_connection
    out = {}
    for schema, name in children:
        query = pgsql.SQL("SELECT min(time), max(time) FROM {}").format(pgsql.Identifier(schema, name))
        first, last = conn.exec_driver_sql(query.as_string(dbapi)).one()
        if first is not None:
            out[name] = (pd.Timestamp(first), pd.Timestamp(last))
    return out


def _relations(plan: object) -> set[str]:
    """Every relation an EXPLAIN (FORMAT JSON) plan reads or writes."""
    found = set()
    if isinstance(plan, dict):
        if "Relation Name" in plan:
            found.add(plan["Relation Name"])
        for value in plan.values():
            found |= _relations(value)
    elif isinstance(plan, list):
        for item in plan:
            found |= _relations(item)
    return found


def _explained(conn: sa.Connection, statement: str, params: dict | None = None) -> set[str]:
    plan = conn.exec_driver_sql("EXPLAIN (FORMAT JSON) " + statement, params or {}).scalar_one()
    return _relations(plan if isinstance(plan, list) else json.loads(plan))


def _assert_only_near(touched: set[str], children: dict, lo: pd.Timestamp, hi: pd.Timestamp) -> None:
    near = {name for name, (first, last) in children.items() if last >= lo and first <= hi}
    far = set(children) - near
    assert len(far) >= 6, "the fixture must hold partitions far from the batch"
    assert touched & near, f"the plan reads none of the batch's partitions: {sorted(touched)}"
    assert not touched & far, f"the plan reads partitions outside the batch: {sorted(touched & far)}"


def test_reload_statements_read_only_the_batch_partitions(any_engine):
    load_frame(any_engine, "ohlcv", _history(), now=NOW, score_config=CONFIG)
    meta = _table_meta("ohlcv")
    batch_frame = _reload_batch(_history())
    batch = _prepare(meta, _load_order(meta, validate_frame("ohlcv", batch_frame)))
    lo, hi = pd.Timestamp(batch.min_time), pd.Timestamp(batch.max_time)
    with any_engine.connect() as conn, conn.begin():
        children = _children_with_data(conn)
        caps, version = _server(conn)
        strategies = {"join", _strategy(caps, version)}
        if version < (18,):
            strategies.discard("on_conflict")
        assert strategies <= set(STRATEGIES)
        _stage(conn, meta, batch)
        dbapi = conn.connection.dbapi_connection
        for strategy in sorted(strategies):
            statement = _merge_statement(meta, list(batch.frame.columns), strategy, audit=True)
            params = _merge_params(meta, batch, audit=_audit())
            touched = _explained(conn, statement.as_string(dbapi), params)
            _assert_only_near(touched, children, lo, hi)

        good = split_frame("ohlcv", batch_frame, load_rules(conn, "ohlcv"), now=NOW).good
        for config in (CONFIG, ScoreConfig()):  # warm-ups of 31 and 101 hourly candles
            query = history_statement(conn, "ohlcv", bounds_of("ohlcv", good), config)
            touched = _explained(conn, query)
            _assert_only_near(touched, children, lo - pd.Timedelta(weeks=3), hi)
        conn.rollback()


def _audit():
    from market_warehouse.resources.warehouse.upsert import AuditContext

    return AuditContext("test", "reload")


def _reference_history(stored: pd.DataFrame, good: pd.DataFrame, config: ScoreConfig) -> pd.DataFrame:
    """The warm-up and stored versions of the batch's series, from a full read of the table."""
    keys = list(SCORED["ohlcv"].series)
    parts = []
    for series, rows in good.groupby(keys):
        first, last = rows["time"].min(), rows["time"].max()
        mine = stored[(stored[keys] == pd.Series(series, index=keys)).all(axis=1)].sort_values("time")
        before = mine[mine["time"] < first].tail(config.window + 1).assign(in_range=False)
        inside = mine[mine["time"].between(first, last)].assign(in_range=True)
        parts += [before, inside]
    return pd.concat(parts, ignore_index=True)[[*keys, "time", *VALUES, "ingested_at", "in_range"]]


def _comparable(frame: pd.DataFrame) -> pd.DataFrame:
    out = frame[[*KEY, *VALUES, "ingested_at", "in_range"]].copy()
    for col in KEY[:3]:
        out[col] = out[col].astype(str)
    for col in ("time", "ingested_at"):
        out[col] = pd.to_datetime(out[col], utc=True).dt.as_unit("us")
    out[VALUES] = out[VALUES].astype("float64")
    return out.sort_values([*KEY, "in_range"]).reset_index(drop=True)


def test_bounded_reload_audits_and_scores_as_a_full_read(any_engine):
    history = _history()
    load_frame(any_engine, "ohlcv", history, run_id="history", now=NOW, score_config=CONFIG)
    batch = _reload_batch(history)
    before = table(any_engine, "ohlcv", "ORDER BY symbol, time")
    before["time"] = pd.to_datetime(before["time"], utc=True)
    before["ingested_at"] = pd.to_datetime(before["ingested_at"], utc=True)
    anomalies_before = len(table(any_engine, "anomalies"))

    with any_engine.connect() as conn:
        split = split_frame("ohlcv", batch, load_rules(conn, "ohlcv"), now=NOW)
        assert len(split.rejected) == 0
        got = load_history(conn, "ohlcv", split.good, CONFIG)
    reference = _reference_history(before, split.good, CONFIG)
    # ETH's warm-up lies weeks before the batch (read again without the first bound), SOL has none.
    eth = reference[(reference["symbol"] == "ETH/USDT") & ~reference["in_range"]]
    assert len(eth) == CONFIG.window + 1 and eth["time"].max() < DAY - pd.Timedelta(weeks=5)
    assert not (reference["symbol"] == "SOL/USDT").any()
    pd.testing.assert_frame_equal(_comparable(got), _comparable(reference))

    expected = score_frame("ohlcv", split.good, split.warnings, reference, now=NOW, config=CONFIG)
    result = load_frame(any_engine, "ohlcv", batch, run_id="reload", now=NOW, score_config=CONFIG)
    after = table(any_engine, "ohlcv", "ORDER BY symbol, time")
    after["time"] = pd.to_datetime(after["time"], utc=True)

    # Scores and flags of the batch's rows are those computed from the full read.
    stored = after.set_index(["symbol", "time"])
    want = expected.frame.set_index(["symbol", "time"])
    np.testing.assert_array_equal(
        stored.loc[want.index, "quality_score"].to_numpy(dtype="float32"),
        want["quality_score"].to_numpy(dtype="float32"),
    )
    np.testing.assert_array_equal(stored.loc[want.index, "is_anomaly"], want["is_anomaly"])
    assert expected.anomalies.shape[0] > 0  # the spike is found
    anomalies = table(any_engine, "anomalies", "ORDER BY id").iloc[anomalies_before:]
    assert result.anomalies == len(anomalies)
    got_anomalies = sorted(
        (a["series_key"]["symbol"], pd.Timestamp(a["time"]), a["metric"], round(a["zscore"], 9))
        for _, a in anomalies.iterrows()
    )
    want_anomalies = sorted(
        (k["symbol"], pd.Timestamp(t), m, round(float(z), 9))
        for k, t, m, z in expected.anomalies[["series_key", "time", "metric", "zscore"]].itertuples(
            index=False
        )
    )
    assert got_anomalies == want_anomalies

    # audit_log and timeseries_archive hold exactly the rows whose stored values changed, old and new.
    joined = before.merge(after, on=KEY, suffixes=("_old", "_new"))
    compared = [*VALUES, "quality_score", "is_anomaly", "source"]
    differs = np.zeros(len(joined), dtype=bool)
    for col in compared:
        old, new = joined[f"{col}_old"], joined[f"{col}_new"]
        differs |= ~((old == new) | (old.isna() & new.isna())).to_numpy()
    changed = {(r.symbol, r.time) for r in joined.loc[differs].itertuples()}
    assert len(changed) >= 4 and result.updated == len(changed)
    audit = table(any_engine, "audit_log", "WHERE changed_by = 'reload'")
    archive = table(any_engine, "timeseries_archive", "WHERE archived_by = 'reload'")
    for rows in (audit, archive):
        keys = {(k["symbol"], pd.Timestamp(k["time"])) for k in rows["row_key"]}
        assert keys == changed and len(rows) == len(changed)
    old_close = {(d["symbol"], pd.Timestamp(d["time"])): d["volume"] for d in archive["row_data"]}
    expected_old = before.set_index(["symbol", "time"])["volume"]
    assert old_close == {k: expected_old[k] for k in changed}
    assert result.balanced and result.inserted == 48


def test_timeseries_warm_up_beyond_the_first_bound_is_read_again(engine):
    """Generic series have no interval: the first bound comes from the batch's spacing."""
    with engine.begin() as conn:
        source_id = conn.execute(
            sa.text("INSERT INTO sources (name, kind) VALUES ('idx', 'file') RETURNING id")
        ).scalar()
    start = pd.Timestamp("2024-01-01", tz="UTC")
    days = start + pd.to_timedelta(np.arange(60), unit="D")
    old = pd.DataFrame({"source_id": source_id, "time": days, "value": np.linspace(1, 2, 60)})
    load_frame(engine, "timeseries_data", old, now=NOW, score_config=CONFIG)
    later = start + pd.Timedelta(days=400) + pd.to_timedelta(np.arange(5), unit="D")  # a gap of a year
    batch = pd.DataFrame({"source_id": source_id, "time": later, "value": 3.0})
    with engine.connect() as conn:
        history = load_history(conn, "timeseries_data", batch, CONFIG)
    assert sorted(history["time"]) == list(days[-(CONFIG.window + 1) :])
    assert not history["in_range"].any()


def test_first_guess_bound_is_below_the_batch(engine):
    """The bounded warm-up of a 1h batch starts 2 x 31 hours before it (window 30)."""
    batch = candles(24, start=DAY).assign(price="trade")  # typed as split_frame types it
    with engine.connect() as conn:
        query = history_statement(conn, "ohlcv", bounds_of("ohlcv", batch), CONFIG)
    lower = (DAY - timedelta(hours=2 * 31)).to_pydatetime()
    assert f"o.time >= CAST('{lower.isoformat()}'::timestamptz AS timestamptz)" in query


def test_a_history_without_columns_scores_like_an_empty_warehouse(engine):
    """score_frame(history=pd.DataFrame()) (a first load, as benchmarks/validation.py calls it) equals the
    scores from the (empty) history that load_history reads."""
    batch = _reload_batch(_history())
    with engine.connect() as conn:
        split = split_frame("ohlcv", batch, load_rules(conn, "ohlcv"), now=NOW)
        history = load_history(conn, "ohlcv", split.good, CONFIG)
    assert history.empty
    read = score_frame("ohlcv", split.good, split.warnings, history, now=NOW, config=CONFIG)
    bare = score_frame("ohlcv", split.good, split.warnings, pd.DataFrame(), now=NOW, config=CONFIG)
    pd.testing.assert_frame_equal(bare.frame, read.frame)
    pd.testing.assert_frame_equal(bare.components, read.components)
