"""Reliability under faults, on the real embedded PostgreSQL: a connection killed in the middle of an upsert,
two runs of one partition at once, a run killed midway and re-executed from failure, and a landing folder
holding every kind of malformed input. Each ends by comparing the final tables with a clean load."""

from __future__ import annotations

import gzip
import json
import textwrap
import threading
import time
import uuid
from datetime import UTC, datetime
from decimal import Decimal

import dagster as dg
import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from market_warehouse.pipelines.defs.derived import (
    AnalyticsResource,
    backtest_asset,
    equity_curve_asset,
    features_asset,
    trading_signals_asset,
)
from market_warehouse.pipelines.defs.market_data import market_trades, ohlcv
from market_warehouse.resources.dagster_resources import (
    ExchangeResource,
    LandingFolderResource,
    WarehouseResource,
    _engine_for,
)
from market_warehouse.resources.database import create_engine, drop_database
from market_warehouse.resources.warehouse import upsert_dataframe
from tests.databases import TEMPLATE_DB, create_database

START = datetime(2024, 3, 1, tzinfo=UTC)
KILL_APP = "mw-reliability-victim"
# Columns that say when or by which run a row was written, or are generated ids: not part of the content.
VOLATILE = {
    "id",
    "run_id",
    "created_at",
    "computed_at",
    "ingested_at",
    "recorded_at",
    "loaded_at",
    "signal_id",
    "correlation_id",
}
UNIVERSE = """
exchanges:
  synthetic:
    driver: synthetic
    seed: 9
    symbols: [BTC/USDT]
    intervals: [1m, 1h]
    orderbook_depth: 5
"""


# --------------------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------------------


def _cell(value) -> str:
    if isinstance(value, dict | list):
        return json.dumps(value, sort_keys=True, default=str)
    if isinstance(value, float | Decimal) and value == value:
        return repr(float(value))
    return str(value)


def content(engine: sa.Engine, table: str) -> pd.DataFrame:
    """The table's rows without volatile columns, as sorted text: equal frames mean equal content."""
    with engine.connect() as conn:
        frame = pd.read_sql(sa.select(sa.table(table, *[sa.column(c) for c in _columns(conn, table)])), conn)
    frame = frame.map(_cell)
    return frame.sort_values(list(frame.columns)).reset_index(drop=True)


def _columns(conn: sa.Connection, table: str) -> list[str]:
    return [c["name"] for c in sa.inspect(conn).get_columns(table) if c["name"] not in VOLATILE]


def scalar(engine: sa.Engine, query: str, **params):
    with engine.connect() as conn:
        return conn.execute(sa.text(query), params).scalar()


@pytest.fixture
def second_url(template_url):
    """Another migrated database: where the clean reference load goes."""
    url = create_database(template_url, f"t_clean_{uuid.uuid4().hex[:10]}", template=TEMPLATE_DB)
    yield url
    drop_database(url)


def _universe(tmp) -> str:
    path = tmp / "universe.yaml"
    path.write_text(textwrap.dedent(UNIVERSE))
    return str(path)


def _resources(url, universe: str, **extra) -> dict:
    return {
        "warehouse": WarehouseResource(database_url=url.render_as_string(hide_password=False)),
        "exchanges": ExchangeResource(universe_path=universe),
        **extra,
    }


# --------------------------------------------------------------------------------------------------------
# (a) the connection killed in the middle of an upsert
# --------------------------------------------------------------------------------------------------------


def candles(minutes: int, symbols: tuple[str, ...], bump: float = 0.0) -> pd.DataFrame:
    rng = np.random.default_rng(1)
    frames = []
    for symbol in symbols:
        close = 100 + rng.standard_normal(minutes).cumsum() + bump
        frames.append(
            pd.DataFrame(
                {
                    "exchange": "binance",
                    "symbol": symbol,
                    "interval": "1m",
                    "time": pd.date_range(START, periods=minutes, freq="min", tz="UTC"),
                    "open": close,
                    "high": close + 1,
                    "low": close - 1,
                    "close": close + 0.5,
                    "volume": rng.random(minutes) * 10,
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def _kill_first_write(admin: sa.Engine, stop: threading.Event, killed: list) -> None:
    """Poll the victim's backend; terminate it as soon as it runs a write statement (COPY/INSERT/UPDATE)."""
    query = sa.text(
        "SELECT pid, left(query, 60) FROM pg_stat_activity WHERE application_name = :app AND state = 'active' "
        "AND query ~* '^\\s*(copy|insert|update|with)'"
    )
    with admin.connect() as conn:
        while not stop.is_set():
            row = conn.execute(query, {"app": KILL_APP}).first()
            terminate = sa.text("SELECT pg_terminate_backend(:pid)")
            if row is not None and conn.execute(terminate, {"pid": row[0]}).scalar():
                killed.append(row[1])
                return
            time.sleep(0.002)


def test_connection_killed_mid_upsert_rolls_back_the_batch_and_the_retry_equals_a_clean_load(
    any_backend_url, second_url
):
    db_url = any_backend_url
    batch_rows = 20_000
    v1 = candles(20_000, ("BTC/USDT", "ETH/USDT", "SOL/USDT"))
    v2 = candles(20_000, ("BTC/USDT", "ETH/USDT", "SOL/USDT"), bump=7.0)  # every price corrected
    victim = create_engine(db_url, connect_args={"application_name": KILL_APP})
    admin = create_engine(db_url, poolclass=sa.NullPool, isolation_level="AUTOCOMMIT")
    clean = create_engine(second_url)
    try:
        upsert_dataframe(victim, "ohlcv", v1, batch_rows=batch_rows)
        stop, killed, errors = threading.Event(), [], []
        killer = threading.Thread(target=_kill_first_write, args=(admin, stop, killed))
        killer.start()
        try:
            upsert_dataframe(victim, "ohlcv", v2, batch_rows=batch_rows)
        except sa.exc.DBAPIError as exc:  # OperationalError, or InterfaceError when noticed at rollback
            errors.append(exc)
        finally:
            stop.set()
            killer.join(timeout=30)
        assert killed, "the upsert finished before its backend could be terminated"
        assert errors, f"terminated during {killed[0]!r} but the upsert did not fail"
        assert errors[0].connection_invalidated, errors[0]  # the pool drops it: the retry gets a new one

        # Whole batches only: each row holds its v1 or its v2 prices, the corrected ones a multiple of the
        # batch size (the killed batch rolled back entirely), and no row was lost or duplicated.
        with victim.connect() as conn:
            stored = pd.read_sql(sa.text("SELECT symbol, time, open FROM ohlcv"), conn)
        assert len(stored) == len(v1)
        keyed = stored.merge(v1[["symbol", "time", "open"]], on=["symbol", "time"], suffixes=("", "_v1"))
        keyed = keyed.merge(v2[["symbol", "time", "open"]].rename(columns={"open": "open_v2"}))
        assert ((keyed["open"] == keyed["open_v1"]) | (keyed["open"] == keyed["open_v2"])).all()
        corrected = int((keyed["open"] == keyed["open_v2"]).sum())
        assert corrected % batch_rows == 0 and corrected < len(v2), f"{corrected} rows: a partial batch"

        # The retry on the same engine (its pool dropped the dead connection) completes the load.
        result = upsert_dataframe(victim, "ohlcv", v2, batch_rows=batch_rows)
        assert (result.inserted, result.updated, result.unchanged) == (0, len(v2) - corrected, corrected)

        upsert_dataframe(clean, "ohlcv", v2, batch_rows=batch_rows)
        pd.testing.assert_frame_equal(content(victim, "ohlcv"), content(clean, "ohlcv"))
    finally:
        victim.dispose()
        admin.dispose()
        clean.dispose()


# --------------------------------------------------------------------------------------------------------
# (b) two runs of the same partition started together
# --------------------------------------------------------------------------------------------------------

DAY = "2024-03-01"
RACED = {"ohlcv": "exchange, symbol, interval, time", "market_trades": "exchange, symbol, trade_id, time"}


def _run_partition(url, universe: str, barrier: threading.Barrier, results: list) -> None:
    """One run: materialize the day's ohlcv and market_trades; report counts and step errors."""
    instance = dg.DagsterInstance.ephemeral()
    try:
        resources = _resources(url, universe)
        barrier.wait(timeout=120)
        result = dg.materialize(
            [ohlcv, market_trades], partition_key=DAY, resources=resources, instance=instance
        )
        errors = [
            e.event_specific_data.error.message
            for e in result.all_events
            if e.event_type_value in ("STEP_UP_FOR_RETRY", "STEP_FAILURE")
        ]
        results.append({"success": result.success, "errors": errors, **{t: _meta(result, t) for t in RACED}})
    except Exception as exc:  # reported to the test, which fails on it
        results.append({"success": False, "errors": [repr(exc)]})
    finally:
        instance.dispose()  # in this thread: its in-memory SQLite storage belongs to it


def _meta(result: dg.ExecuteInProcessResult, table: str) -> dict:
    (event,) = [e for e in result.get_asset_materialization_events() if e.asset_key.path == [table]]
    return {k: getattr(v, "value", v) for k, v in event.materialization.metadata.items() if "rows" in k}


def test_two_runs_of_one_partition_at_once_store_each_row_once(any_backend_url, second_url, safe_tmp):
    """Two runs (threads, each with its own connections) start the same partition together: both succeed
    without a retry, each row is inserted by exactly one of them (the other finds it unchanged), and the
    table equals one run's."""
    db_url = any_backend_url
    universe = _universe(safe_tmp)
    together, reference = create_engine(db_url), create_engine(second_url)
    try:
        # The day's partition does not exist yet (2024 is far behind the partitions made ahead of now): both
        # loads create it, which deadlocked before loaders took the advisory locks ahead of their reads.
        barrier, results = threading.Barrier(2), []
        runs = [
            threading.Thread(target=_run_partition, args=(db_url, universe, barrier, results)) for _ in "ab"
        ]
        for run in runs:
            run.start()
        for run in runs:
            run.join(timeout=300)
        assert len(results) == 2
        assert all(r["success"] and not r["errors"] for r in results), [r["errors"] for r in results]

        clean = dg.materialize(
            [ohlcv, market_trades], partition_key=DAY, resources=_resources(second_url, universe)
        )
        assert clean.success
        for table, key in RACED.items():
            total = scalar(together, f"SELECT count(*) FROM {table}")
            assert total == scalar(together, f"SELECT count(DISTINCT ({key})) FROM {table}") > 0
            pd.testing.assert_frame_equal(content(together, table), content(reference, table))
            counts = [r[table] for r in results]
            assert sum(c["rows_inserted"] for c in counts) == total, counts
            assert all(c["rows_updated"] == 0 for c in counts), counts
            assert all(
                c["rows_fetched"] == c["rows_inserted"] + c["rows_unchanged"] + c["rows_quarantined"]
                for c in counts
            ), counts
    finally:
        together.dispose()
        reference.dispose()


# --------------------------------------------------------------------------------------------------------
# (c) a run killed midway, re-executed from failure
# --------------------------------------------------------------------------------------------------------

RUN_DB_ENV, RUN_UNIVERSE_ENV = "MW_RELIABILITY_DB", "MW_RELIABILITY_UNIVERSE"
WINDOW = {
    "dagster/asset_partition_range_start": "2024-03-01",
    "dagster/asset_partition_range_end": "2024-03-02",
}
GRAPH = [ohlcv, features_asset, trading_signals_asset, backtest_asset, equity_curve_asset]
ANALYTICS = AnalyticsResource(
    strategy_inception="2024-03-01", fast=3, slow=8, stop_loss=0.004, take_profit=0.006
)
COMPARED = [
    "ohlcv",
    "features",
    "trading_signals",
    "trade_history",
    "bot_trades",
    "backtest_results",
    "equity_curve",
]


def reexecution_job() -> dg.JobDefinition:
    """Market data and the strategy chain over two days, in process (re-constructed by `execute_job`)."""
    resources = {
        "warehouse": WarehouseResource(database_url=dg.EnvVar(RUN_DB_ENV)),
        "exchanges": ExchangeResource(universe_path=dg.EnvVar(RUN_UNIVERSE_ENV)),
        "analytics": ANALYTICS,
    }
    job = dg.define_asset_job("reliability_graph", executor_def=dg.in_process_executor)
    return dg.Definitions(assets=GRAPH, jobs=[job], resources=resources).resolve_job_def("reliability_graph")


class KillAtWrite:
    """Terminates, from another connection, the backend of the connection about to run the `nth`
    `INSERT INTO <table>`: the server-side kill of a failover or an operator's pg_terminate_backend, at a
    known point (here: day 2 of a two-day backtest, after its fills were written in the same transaction)."""

    def __init__(self, admin: sa.Engine, table: str, nth: int):
        self.admin, self.prefix, self.nth = admin, f"INSERT INTO {table} ", nth
        self.seen, self.killed = 0, None

    def __call__(self, conn, cursor, statement, parameters, context, executemany) -> None:
        if self.killed or not statement.lstrip().startswith(self.prefix):
            return
        self.seen += 1
        if self.seen == self.nth:
            self.killed = conn.connection.dbapi_connection.get_backend_pid()
            with self.admin.connect() as admin:
                stop = sa.text("SELECT pg_terminate_backend(:pid, 10000)")  # waits until it is gone
                assert admin.execute(stop, {"pid": self.killed}).scalar()


def _count_between(engine: sa.Engine, table: str, start: str, end: str) -> int:
    return scalar(engine, f"SELECT count(*) FROM {table} WHERE time >= :a AND time < :b", a=start, b=end)


def test_run_killed_midway_and_reexecuted_from_failure_equals_a_clean_run(
    db_url, second_url, safe_tmp, monkeypatch
):
    universe = _universe(safe_tmp)
    monkeypatch.setenv(RUN_DB_ENV, db_url.render_as_string(hide_password=False))
    monkeypatch.setenv(RUN_UNIVERSE_ENV, universe)
    engine = _engine_for(db_url.render_as_string(hide_password=False))  # the pool the resource uses
    admin = create_engine(db_url, poolclass=sa.NullPool, isolation_level="AUTOCOMMIT")
    reference = create_engine(second_url)
    kill = KillAtWrite(admin, "backtest_results", nth=2)
    recon = dg.reconstructable(reexecution_job)
    try:
        with dg.instance_for_test() as instance:
            sa.event.listen(engine, "before_cursor_execute", kill)
            try:
                failed = dg.execute_job(recon, instance, tags=WINDOW, raise_on_error=False)
            finally:
                sa.event.remove(engine, "before_cursor_execute", kill)
            assert kill.killed and not failed.success
            failures = [e for e in failed.all_events if e.event_type_value == "STEP_FAILURE"]
            assert [e.step_key for e in failures] == ["backtest"]
            assert "server closed the connection" in failures[0].event_specific_data.error.to_string()
            started = {e.step_key for e in failed.all_events if e.event_type_value == "STEP_START"}
            assert started == {"ohlcv", "features", "trading_signals", "backtest"}  # equity_curve waited
            # Day 1 was committed; day 2's transaction (its fills, then the killed result row) rolled back.
            assert scalar(engine, "SELECT count(*) FROM backtest_results") == 1
            assert scalar(engine, "SELECT count(*) FROM trade_history WHERE executed_at >= '2024-03-02'") == 0
            assert scalar(engine, "SELECT count(*) FROM trade_history") > 0

            options = dg.ReexecutionOptions.from_failure(failed.run_id, instance)
            # execute_job does not carry the parent's partition-range tags over: the window is given again.
            again = dg.execute_job(
                recon, instance, reexecution_options=options, tags=WINDOW, raise_on_error=False
            )
            assert again.success
            executed = {e.step_key for e in again.all_events if e.event_type_value == "STEP_SUCCESS"}
            assert executed == {"backtest", "equity_curve"}  # the failed step and what it held back

        clean = reexecution_job().execute_in_process(
            tags=WINDOW,
            resources={
                "warehouse": WarehouseResource(database_url=second_url.render_as_string(hide_password=False))
            },
        )
        assert clean.success
        for table in COMPARED:
            mine, theirs = content(engine, table), content(reference, table)
            assert len(mine) > 0, table
            pd.testing.assert_frame_equal(mine, theirs, obj=table)
    finally:
        admin.dispose()
        reference.dispose()


# --------------------------------------------------------------------------------------------------------
# (d) malformed inputs of every kind in one landing folder
# --------------------------------------------------------------------------------------------------------

T0 = int(pd.Timestamp("2024-01-01T00:00:00Z").timestamp() * 1000)
MIN, HOUR = 60_000, 3_600_000


def _klines(n: int, step: int = MIN, start: int = T0) -> list[list]:
    return [
        [start + i * step, f"{100 + i}", f"{102 + i}", f"{99 + i}", f"{101 + i}", "10.5",
         start + (i + 1) * step - 1, "1050.0", 7, "5.0", "500.0", "0"]
        for i in range(n)
    ]  # fmt: skip


def _records(n: int, step: int = HOUR, iso=lambda ms: pd.Timestamp(ms, unit="ms", tz="UTC").isoformat()):
    return [
        {"timestamp": iso(T0 + i * step), "open": 10 + i, "high": 12 + i, "low": 9 + i, "close": 11 + i,
         "volume": 3}
        for i in range(n)
    ]  # fmt: skip


def _malformed_folder(root) -> dict[str, tuple[str, int, int]]:
    """Writes the folder; returns path -> (expected status, rows stored, rows quarantined)."""
    files: dict[str, bytes] = {}
    expected: dict[str, tuple[str, int, int]] = {}

    def land(path: str, content, status: str, stored: int, quarantined: int, gz: bool = False) -> None:
        data = content if isinstance(content, bytes) else json.dumps(content).encode()
        files[path] = gzip.compress(data) if gz else data
        expected[path] = (status, stored, quarantined)

    land("binance/BTC_USDT-1m.json", _klines(60), "loaded", 60, 0)
    land("binance/ETH_USDT-1h.json.gz", {"data": _records(24)}, "loaded", 24, 0, gz=True)
    lines = [json.dumps(r) for r in _records(10)]
    lines[4] = '{"timestamp": "2024-01-01T04:00:00Z", "open": 14, "hi'  # one broken line
    land("binance/XRP_USDT-1h.ndjson", "\n".join(lines).encode(), "partial", 9, 1)
    land("binance/SOL_USDT-1m.json", b'[[1704067200000, "1", "2"', "failed", 0, 0)  # truncated
    wrong = _klines(10)
    wrong[1][1] = "n/a"  # a price that is not a number
    wrong[2][5] = {"amount": 3}  # a volume that is an object
    wrong[3][4] = None  # a missing close
    land("binance/ADA_USDT-1m.json", wrong, "partial", 7, 3)
    naive = _records(5, iso=lambda ms: pd.Timestamp(ms, unit="ms").isoformat())  # no zone
    land("binance/DOT_USDT-1h.json", naive, "failed", 0, 0)
    land("binance/LTC_USDT-1m.json", b"", "empty", 0, 0)
    land("binance/BNB_USDT-1m.json.gz", gzip.compress(json.dumps(_klines(5)).encode())[:-30], "failed", 0, 0)
    land("binance/TRX_USDT-1m.json", {"hello": "world", "answer": 42}, "failed", 0, 0)  # unknown layout
    dup = _klines(10)
    dup.append([*dup[3][:4], "103.5", *dup[3][5:]])  # the same candle again, another (valid) close
    land("binance/LINK_USDT-1m.json", dup, "partial", 10, 1)
    future = int(pd.Timestamp.now(tz="UTC").floor("min").timestamp() * 1000) + 2 * HOUR
    land("binance/AVAX_USDT-1m.json", _klines(5) + _klines(2, start=future), "partial", 5, 2)
    bad_values = _klines(10)
    bad_values[2][5] = "-4.0"  # negative volume
    bad_values[6][2], bad_values[6][3] = "90.0", "95.0"  # high below low
    land("binance/MATIC_USDT-1m.json", bad_values, "partial", 8, 2)
    land("binance/DOGE_USDT-1h.json", _klines(30), "failed", 0, 0)  # named hourly, holds minutes
    units = _klines(10)
    units[5][0] = units[5][0] // 1000  # one time in seconds among milliseconds
    land("binance/UNI_USDT-1m.json", units, "partial", 9, 1)
    land(
        "binance/csv_USDT-1m.json",
        b"time,open,high,low,close,volume\n1704067200000,1,2,0.5,1.5,3\n",
        "failed",
        0,
        0,
    )

    for path, data in files.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_bytes(data)
    return expected


def test_a_folder_of_every_malformed_input_loads_the_good_reports_the_bad_and_balances(db_url, safe_tmp):
    from market_warehouse.pipelines.defs.ingestion import historical_files, historical_files_no_failed_files

    root = safe_tmp / "landing"
    expected = _malformed_folder(root)
    resources = {
        "warehouse": WarehouseResource(database_url=db_url.render_as_string(hide_password=False)),
        "landing": LandingFolderResource(path=str(root), settle_seconds=0),
    }
    result = dg.materialize([historical_files, historical_files_no_failed_files], resources=resources)
    assert result.success  # bad files are data problems: the asset succeeds and reports them
    meta = result.get_asset_materialization_events()[0].materialization.metadata
    files = {r.data["path"]: r.data for r in meta["files"].value.records}
    engine = create_engine(db_url)
    try:
        with engine.connect() as conn:
            ledger = {
                r.path: r
                for r in conn.execute(
                    sa.text("SELECT path, status, error, rows_loaded, rows_quarantined FROM ingest_files")
                )
            }
            quarantined = dict(
                conn.execute(sa.text("SELECT source, count(*) FROM quarantine GROUP BY source")).all()
            )
            stored = dict(conn.execute(sa.text("SELECT symbol, count(*) FROM ohlcv GROUP BY symbol")).all())
        outcome = {
            path: (files[path]["status"], ledger[path].rows_loaded, ledger[path].rows_quarantined)
            for path in expected
        }
        assert outcome == expected
        for path, row in files.items():
            # fetched = inserted + updated + unchanged + quarantined, for every file
            assert (
                row["fetched"] == row["inserted"] + row["updated"] + row["unchanged"] + row["quarantined"]
            ), row
            assert quarantined.get(f"file:{path}", 0) == row["quarantined"], path
            if row["status"] == "failed":
                assert row["error"].startswith(path) and len(row["error"]) > len(path) + 10, row["error"]
                assert ledger[path].error == row["error"]
        # Totals: what the metadata says, what the tables hold.
        assert meta["rows_inserted"].value == sum(stored.values()) == sum(e[1] for e in expected.values())
        assert (
            meta["rows_quarantined"].value
            == sum(quarantined.values())
            == sum(e[2] for e in expected.values())
        )
        assert meta["files_failed"].value == sum(e[0] == "failed" for e in expected.values())
        (check,) = result.get_asset_check_evaluations()
        assert not check.passed and check.metadata["files_failed"].value == meta["files_failed"].value

        # Every reason is specific: the rule of each quarantined row names what was wrong.
        with engine.connect() as conn:
            rules = {r for (r,) in conn.execute(sa.text("SELECT DISTINCT rule FROM quarantine"))}
        assert {
            "invalid_json",  # the broken NDJSON line
            "non_numeric",
            "missing_value",
            "unique_key",  # the earlier of two conflicting copies of a candle
            "time_not_future",
            "volume_non_negative",
            "timestamp_unit",
        } <= rules, rules

        # Loading the folder again writes nothing: loaded, partial and empty files are skipped, failed
        # ones fail again the same way.
        again = dg.materialize([historical_files], resources=resources)
        meta2 = again.get_asset_materialization_events()[0].materialization.metadata
        assert (
            meta2["rows_inserted"].value
            == meta2["rows_updated"].value
            == meta2["rows_quarantined"].value
            == 0
        )
        assert meta2["files_failed"].value == meta["files_failed"].value
        assert scalar(engine, "SELECT count(*) FROM quarantine") == sum(quarantined.values())
    finally:
        engine.dispose()
