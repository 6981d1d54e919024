"""Retries: only what can pass on another try is retried; anything else fails at once, naming its root cause.

The classifier is tested on real exceptions: ccxt's own (raised by ccxt code against the local Binance
replay), and PostgreSQL's serialization failure, deadlock, lock timeout and terminated connection produced
against the embedded server, through psycopg2, SQLAlchemy and asyncpg. The Dagster wiring is tested by
materializing the real market-data assets: a deterministic error fails in one attempt without back-off, a
transient one (an exchange 429, a database lock timeout) is retried and the run succeeds.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from pathlib import Path

import asyncpg
import ccxt
import dagster as dg
import psycopg2
import psycopg2.errors
import pytest
import sqlalchemy as sa

from market_warehouse.pipelines import demo
from market_warehouse.pipelines.defs import market_data
from market_warehouse.pipelines.retries import retry_transient, root_error, step_error
from market_warehouse.resources.dagster_resources import ExchangeResource, WarehouseResource
from market_warehouse.resources.database import create_engine
from market_warehouse.resources.exchanges.client import PullStats, build_exchange, call
from market_warehouse.resources.exchanges.synthetic import SyntheticExchange
from market_warehouse.resources.exchanges.universe import ExchangeConfig
from market_warehouse.resources.retry import (
    Backoff,
    RemoteError,
    RootError,
    classify,
    error_chain,
    is_transient,
    root_cause,
)
from market_warehouse.resources.warehouse.async_api import create_warehouse_async_engine
from tests.fixtures.exchanges.replay import BinanceReplay
from tests.universes import BINANCE_UNIVERSE, SYNTHETIC_UNIVERSE, universe_file

DAY = "2024-03-02"
BINANCE_DAY = "2024-03-01"  # a whole recorded day: 24 hourly candles
THIS_FILE = "tests/test_retries.py"


def raise_line(marker: str) -> int:
    """The line number of the statement carrying `# <marker>` in this file (for file:line assertions)."""
    lines = Path(__file__).read_text().splitlines()
    (number,) = [i for i, line in enumerate(lines, 1) if line.rstrip().endswith(f"# {marker}")]
    return number


# --------------------------------------------------------------------------------------------------------
# The classifier
# --------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "error",
    [
        ccxt.NetworkError("connection reset"),
        ccxt.RateLimitExceeded("429"),
        ccxt.DDoSProtection("418"),
        ccxt.RequestTimeout("timed out"),
        ccxt.ExchangeNotAvailable("503"),
        ccxt.OnMaintenance("maintenance"),
        ConnectionResetError("reset by peer"),
        TimeoutError("read timed out"),
    ],
    ids=lambda e: type(e).__name__,
)
def test_network_and_exchange_outages_are_transient(error):
    verdict = classify(error)
    assert verdict.transient and verdict.error is error


@pytest.mark.parametrize(
    "error",
    [
        ccxt.BadSymbol("binance does not have market symbol NOPE/USDT"),
        ccxt.BadRequest("invalid interval"),
        ccxt.NotSupported("fetchFundingRateHistory"),
        ccxt.AuthenticationError("invalid key"),
        ccxt.ExchangeError("unknown"),
        ccxt.BadResponse("not JSON"),
        IndexError("index -1 is out of bounds for axis 0 with size 0"),
        ValueError("bad value"),
        KeyError("close"),
        ZeroDivisionError("division by zero"),
        FileNotFoundError("universe.yaml"),
    ],
    ids=lambda e: type(e).__name__,
)
def test_deterministic_errors_are_not_transient(error):
    verdict = classify(error)
    assert not verdict.transient
    assert verdict.reason == f"not transient: {type(error).__name__}"


def _raise(error: BaseException, cause: BaseException | None = None, *, suppress: bool = False):
    try:
        if cause is None:
            raise error
        try:
            raise cause
        except BaseException:
            if suppress:
                raise error from None
            raise error  # noqa: B904 - the implicit context is what this builds
    except BaseException as raised:
        return raised


def test_the_chain_is_walked_the_way_python_prints_it():
    wrapped = RuntimeError("load failed")
    wrapped.__cause__ = ccxt.RateLimitExceeded("429")
    assert is_transient(wrapped)
    assert isinstance(root_cause(wrapped), ccxt.RateLimitExceeded)

    during = _raise(KeyError("x"), ccxt.NetworkError("reset"))  # raised while handling a transient error
    assert is_transient(during) and [type(e) for e in error_chain(during)] == [KeyError, ccxt.NetworkError]

    hidden = _raise(ValueError("bad config"), ccxt.NetworkError("reset"), suppress=True)  # `from None`
    assert not is_transient(hidden) and list(error_chain(hidden)) == [hidden]

    deterministic = _raise(ValueError("bad"), IndexError("deep"))
    verdict = classify(deterministic)
    assert not verdict.transient and isinstance(verdict.error, IndexError)  # the root cause

    loop = ValueError("a")
    loop.__cause__ = TypeError("b")
    loop.__cause__.__cause__ = loop
    assert [type(e) for e in error_chain(loop)] == [ValueError, TypeError]  # a cycle ends the walk


def test_root_error_names_type_message_and_the_line_that_raised(tmp_path):
    def parse():
        return [1][3]  # ROOT-ERROR-RAISE

    try:
        try:
            parse()
        except IndexError as exc:
            raise RuntimeError("wrapper") from exc
    except RuntimeError as exc:
        root = RootError.of(exc)
    assert root == RootError(
        "IndexError", "list index out of range", f"{THIS_FILE}:{raise_line('ROOT-ERROR-RAISE')}"
    )
    assert str(root) == f"IndexError: list index out of range (at {root.location})"


# ccxt errors raised by ccxt itself, against the local Binance


@pytest.fixture
def replay(httpserver):
    return BinanceReplay(httpserver)


def binance(replay):
    return build_exchange(
        ExchangeConfig(
            name="binance",
            driver="binance",
            symbols=("BTC/USDT",),
            intervals=("1h",),
            options={"fetchMarkets": {"types": ["spot", "linear"]}},
        ),
        api_base_url=replay.base_url,
    )


def test_real_ccxt_errors_classify_and_call_retries_only_the_transient_ones(replay):
    exchange = binance(replay)
    slept: list[float] = []
    backoff = Backoff(base_delay=0.001, max_retries=3, jitter=0.0, sleep=slept.append)

    stats = PullStats()
    with pytest.raises(ccxt.BadSymbol) as bad:  # ccxt's own market lookup: the same every time
        call(exchange, "fetch_ohlcv", "NOPE/USDT", "1h", backoff=backoff, stats=stats)
    assert not is_transient(bad.value)
    assert stats.requests == 1 and slept == []  # not retried

    replay.fail_with["/api/v3/klines"] = [429, 503]
    rows = call(
        exchange, "fetch_ohlcv", "BTC/USDT", "1h", since=1709251200000, limit=2, backoff=backoff, stats=stats
    )
    assert len(rows) == 2
    assert (stats.rate_limited, stats.network_retries) == (1, 1) and slept == [0.001, 0.002]
    assert stats.requests == 1 + 3

    replay.fail_with["/api/v3/klines"] = [429]
    with pytest.raises(ccxt.BaseError) as limited:
        call(exchange, "fetch_ohlcv", "BTC/USDT", "1h", backoff=Backoff(max_retries=0), stats=PullStats())
    assert isinstance(limited.value, ccxt.NetworkError) and is_transient(limited.value)


def test_call_raises_a_bug_in_the_exchange_at_once():
    exchange = SyntheticExchange(seed=1, symbols=["BTC/USDT"])
    slept: list[float] = []
    stats = PullStats()
    with pytest.raises(TypeError):
        call(exchange, "fetch_ohlcv", backoff=Backoff(sleep=slept.append), stats=stats)  # no symbol
    assert stats.requests == 1 and slept == []


# Database errors produced by PostgreSQL


@pytest.fixture
def probe(engine):
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE retry_probe (id int PRIMARY KEY, v int)"))
        conn.execute(sa.text("INSERT INTO retry_probe VALUES (1, 0), (2, 0)"))
    return engine


def _dsn(engine: sa.Engine) -> dict:
    url = engine.url
    params = {"host": url.host, "port": url.port, "user": url.username, "dbname": url.database}
    params.update({k: v for k, v in url.query.items() if k in ("host", "port")})
    if url.password:
        params["password"] = url.password
    return {k: v for k, v in params.items() if v is not None}


def _psycopg2(engine: sa.Engine):
    conn = psycopg2.connect(**_dsn(engine))
    conn.autocommit = False
    return conn


def serialization_failure(engine: sa.Engine) -> psycopg2.Error:
    """40001: a REPEATABLE READ transaction updates a row another one changed since its snapshot."""
    a, b = _psycopg2(engine), _psycopg2(engine)
    try:
        a.set_session(isolation_level="REPEATABLE READ")
        with a.cursor() as cur:
            cur.execute("SELECT v FROM retry_probe WHERE id = 1")
        with b.cursor() as cur:
            cur.execute("UPDATE retry_probe SET v = v + 1 WHERE id = 1")
        b.commit()
        with a.cursor() as cur, pytest.raises(psycopg2.Error) as err:
            cur.execute("UPDATE retry_probe SET v = v + 10 WHERE id = 1")
        return err.value
    finally:
        a.close()
        b.close()


def deadlock(engine: sa.Engine) -> psycopg2.Error:
    """40P01: two transactions each wait for the row the other one holds."""
    a, b = _psycopg2(engine), _psycopg2(engine)
    errors: list[BaseException] = []

    def lock_two_then_one():
        try:
            with b.cursor() as cur:
                cur.execute("UPDATE retry_probe SET v = 1 WHERE id = 1")
            b.commit()
        except psycopg2.Error as exc:
            errors.append(exc)
            b.rollback()

    try:
        with a.cursor() as cur:
            cur.execute("UPDATE retry_probe SET v = 1 WHERE id = 1")
        with b.cursor() as cur:
            cur.execute("UPDATE retry_probe SET v = 2 WHERE id = 2")
        other = threading.Thread(target=lock_two_then_one)
        other.start()
        _wait_for_lock_waiters(engine, 1)
        try:
            with a.cursor() as cur:
                cur.execute("UPDATE retry_probe SET v = 1 WHERE id = 2")
            a.commit()
        except psycopg2.Error as exc:
            errors.append(exc)
            a.rollback()
        other.join(timeout=30)
        (error,) = errors  # PostgreSQL aborts exactly one of the two
        return error
    finally:
        a.close()
        b.close()


def lock_timeout(engine: sa.Engine) -> psycopg2.Error:
    """55P03: `lock_timeout` expires while another transaction holds the row."""
    a, b = _psycopg2(engine), _psycopg2(engine)
    try:
        with a.cursor() as cur:
            cur.execute("SELECT * FROM retry_probe WHERE id = 1 FOR UPDATE")
        with b.cursor() as cur, pytest.raises(psycopg2.Error) as err:
            cur.execute("SET lock_timeout = '50ms'")
            cur.execute("UPDATE retry_probe SET v = 3 WHERE id = 1")
        return err.value
    finally:
        a.close()
        b.close()


def _wait_for_lock_waiters(engine: sa.Engine, count: int, timeout: float = 30.0) -> None:
    query = sa.text(
        "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()"
    )
    deadline = time.monotonic() + timeout
    with engine.connect() as conn:
        while conn.execute(query).scalar_one() < count:
            assert time.monotonic() < deadline, "no session started waiting for the lock"
            time.sleep(0.01)


def test_serialization_failure_deadlock_and_lock_timeout_from_postgresql_are_transient(probe):
    for produce, code, cls in [
        (serialization_failure, "40001", psycopg2.errors.SerializationFailure),
        (deadlock, "40P01", psycopg2.errors.DeadlockDetected),
        (lock_timeout, "55P03", psycopg2.errors.LockNotAvailable),
    ]:
        error = produce(probe)
        assert isinstance(error, cls) and error.pgcode == code
        verdict = classify(error)
        assert verdict.transient and verdict.reason.startswith(f"SQLSTATE {code}")


def test_constraint_syntax_and_data_errors_are_not_transient(probe):
    statements = {
        "INSERT INTO retry_probe VALUES (1, 0)": sa.exc.IntegrityError,  # 23505
        "SELEC 1": sa.exc.ProgrammingError,  # 42601
        "SELECT 1 / 0": sa.exc.DataError,  # 22012
        "SELECT * FROM no_such_table": sa.exc.ProgrammingError,  # 42P01
    }
    for statement, wrapper in statements.items():
        with pytest.raises(wrapper) as err, probe.begin() as conn:
            conn.execute(sa.text(statement))
        assert not is_transient(err.value), statement
        assert isinstance(root_cause(err.value), psycopg2.Error)


def test_an_error_of_the_writer_process_crosses_back_with_its_class_and_verdict(probe):
    """The stream's writer process sends its errors back pickled as `RemoteError` (a driver's error may not
    unpickle): the class name, the root cause and whether a retry can pass all survive the trip."""
    import pickle

    transient = pickle.loads(pickle.dumps(RemoteError.of(serialization_failure(probe))))
    assert classify(transient).transient and classify(transient).reason.startswith("SQLSTATE 40001")
    assert str(transient).startswith("SerializationFailure: ") and "transient: SQLSTATE 40001" in str(
        transient
    )
    with pytest.raises(sa.exc.IntegrityError) as err, probe.begin() as conn:
        conn.execute(sa.text("INSERT INTO retry_probe VALUES (1, 0)"))
    final = pickle.loads(pickle.dumps(RemoteError.of(err.value)))
    assert not is_transient(final) and final.kind == "IntegrityError"
    assert "root cause UniqueViolation: duplicate key value" in str(final)
    assert "not transient: UniqueViolation" in str(final)


def test_sqlalchemy_wraps_a_serialization_failure_and_it_stays_transient(probe):
    a, b = probe.connect(), probe.connect()
    try:
        a = a.execution_options(isolation_level="SERIALIZABLE")
        a.begin()
        a.execute(sa.text("SELECT v FROM retry_probe WHERE id = 1"))
        with b.begin():
            b.execute(sa.text("UPDATE retry_probe SET v = v + 1 WHERE id = 1"))
        with pytest.raises(sa.exc.OperationalError) as err:
            a.execute(sa.text("UPDATE retry_probe SET v = v + 10 WHERE id = 1"))
    finally:
        a.close()
        b.close()
    assert isinstance(err.value.orig, psycopg2.errors.SerializationFailure)
    assert not err.value.connection_invalidated
    assert classify(err.value).error is err.value.orig
    assert RootError.of(err.value).type == "SerializationFailure"


def test_a_terminated_connection_is_transient_through_psycopg2_and_sqlalchemy(probe, db_url):
    admin = create_engine(db_url, poolclass=sa.NullPool, isolation_level="AUTOCOMMIT")
    victim = create_engine(db_url, connect_args={"application_name": "retry-victim"})
    raw = _psycopg2(probe)
    try:
        with raw.cursor() as cur:
            cur.execute("SELECT pg_backend_pid()")
            (raw_pid,) = cur.fetchone()
        with victim.connect() as conn:
            pid = conn.execute(sa.text("SELECT pg_backend_pid()")).scalar_one()
            with admin.connect() as a:
                a.execute(sa.text("SELECT pg_terminate_backend(:p, 5000)"), {"p": pid})
                a.execute(sa.text("SELECT pg_terminate_backend(:p, 5000)"), {"p": raw_pid})
            with pytest.raises(sa.exc.DBAPIError) as wrapped:
                conn.execute(sa.text("SELECT 1"))
        with raw.cursor() as cur, pytest.raises(psycopg2.Error) as bare:
            cur.execute("SELECT 1")  # "server closed the connection unexpectedly"
        with pytest.raises(psycopg2.InterfaceError) as closed:
            raw.cursor().execute("SELECT 1")  # "connection already closed"
    finally:
        raw.close()
        admin.dispose()
        victim.dispose()
    assert wrapped.value.connection_invalidated and is_transient(wrapped.value)
    assert is_transient(bare.value), (type(bare.value), bare.value.pgcode, bare.value)
    assert is_transient(closed.value) and not is_transient(psycopg2.InterfaceError("no such cursor"))


def test_a_refused_connection_is_transient(db_url):
    with pytest.raises(psycopg2.OperationalError) as err:
        psycopg2.connect(host="127.0.0.1", port=1, dbname="x", user="x", connect_timeout=2)
    assert err.value.pgcode is None and is_transient(err.value)


def test_asyncpg_errors_classify_by_sqlstate_directly_and_through_sqlalchemy(probe, db_url):
    async def scenario():
        holder = create_warehouse_async_engine(db_url)
        waiter = create_warehouse_async_engine(db_url)
        try:
            async with holder.connect() as a, waiter.connect() as b:
                await a.execute(sa.text("SELECT * FROM retry_probe WHERE id = 1 FOR UPDATE"))
                await b.execute(sa.text("SET lock_timeout = '50ms'"))
                with pytest.raises(sa.exc.DBAPIError) as through_sqlalchemy:
                    await b.execute(sa.text("UPDATE retry_probe SET v = 4 WHERE id = 1"))
                await b.rollback()
                raw = await b.get_raw_connection()
                driver = raw.driver_connection
                await driver.execute("SET lock_timeout = '50ms'")
                with pytest.raises(asyncpg.PostgresError) as direct:
                    await driver.execute("UPDATE retry_probe SET v = 5 WHERE id = 1")
                await a.rollback()
            return through_sqlalchemy.value, direct.value
        finally:
            await holder.dispose()
            await waiter.dispose()

    wrapped, direct = asyncio.run(scenario())
    assert isinstance(direct, asyncpg.exceptions.LockNotAvailableError) and is_transient(direct)
    assert wrapped.orig.sqlstate == "55P03" and is_transient(wrapped)
    assert any(isinstance(e, asyncpg.exceptions.LockNotAvailableError) for e in error_chain(wrapped))


# --------------------------------------------------------------------------------------------------------
# The Dagster wiring
# --------------------------------------------------------------------------------------------------------


def test_step_error_asks_a_retry_for_transient_errors_only_until_tries_run_out():
    backoff = Backoff(base_delay=2.0, max_delay=100.0, max_retries=3, jitter=0.0)
    transient = ccxt.RequestTimeout("read timed out")
    for attempt, wait in [(0, 2.0), (1, 4.0), (2, 8.0)]:
        request = step_error(transient, attempt, backoff)
        assert isinstance(request, dg.RetryRequested)
        assert (request.max_retries, request.seconds_to_wait) == (3, wait)
    final = step_error(transient, 3, backoff)
    assert isinstance(final, dg.Failure) and not final.allow_retries
    assert final.description.startswith("RequestTimeout: read timed out")
    assert "still failing after 3 retries" in final.description

    bug = step_error(IndexError("index -1 is out of bounds"), 0, backoff)
    assert isinstance(bug, dg.Failure) and not bug.allow_retries
    assert bug.description.startswith("IndexError: index -1 is out of bounds")
    assert bug.metadata["error_type"].value == "IndexError"
    assert bug.metadata["transient"].value is False


class Faults:
    """Makes a method of the synthetic exchange raise the given errors first, and counts its calls."""

    def __init__(self, monkeypatch, method: str, *errors: BaseException):
        self.errors, self.calls = list(errors), 0
        original = getattr(SyntheticExchange, method)

        def faulty(exchange, *args, **kwargs):
            self.calls += 1
            if self.errors:
                raise self.errors.pop(0)  # FAULT-RAISE
            return original(exchange, *args, **kwargs)

        monkeypatch.setattr(SyntheticExchange, method, faulty)


def _events(result: dg.ExecuteInProcessResult, step: str) -> list[str]:
    return [e.event_type_value for e in result.all_events if e.step_key == step]


def _step_seconds(result: dg.ExecuteInProcessResult, instance: dg.DagsterInstance, step: str) -> float:
    records = instance.all_logs(result.run_id)
    times = {
        r.dagster_event.event_type_value: r.timestamp
        for r in records
        if r.dagster_event and r.dagster_event.step_key == step
    }
    return times["STEP_FAILURE"] - times["STEP_START"]


def _failure(result: dg.ExecuteInProcessResult, step: str):
    (event,) = [e for e in result.all_events if e.step_key == step and e.event_type_value == "STEP_FAILURE"]
    return event.event_specific_data


def test_a_bug_fails_the_step_in_one_attempt_naming_the_root_error(db_url, tmp_path, monkeypatch):
    bug = IndexError("index -1 is out of bounds for axis 0 with size 0")
    faults = Faults(monkeypatch, "fetch_ohlcv", *[bug] * 5)
    resources = {  # the shipped back-off (15 s, 30 s, 60 s): a retry would show in the step's duration
        "warehouse": WarehouseResource(database_url=db_url.render_as_string(hide_password=False)),
        "exchanges": ExchangeResource(universe_path=universe_file(tmp_path, SYNTHETIC_UNIVERSE)),
    }
    with dg.instance_for_test() as instance:
        result = dg.materialize(
            [market_data.ohlcv],
            partition_key=DAY,
            resources=resources,
            instance=instance,
            raise_on_error=False,
        )
        seconds = _step_seconds(result, instance, "ohlcv")

    assert not result.success and faults.calls == 1
    events = _events(result, "ohlcv")
    assert "STEP_UP_FOR_RETRY" not in events and "STEP_RESTARTED" not in events
    assert events.count("STEP_FAILURE") == 1
    assert seconds < 2.0, f"the step took {seconds:.1f}s: it waited"
    failure = _failure(result, "ohlcv")
    where = f"{THIS_FILE}:{raise_line('FAULT-RAISE')}"
    expected = f"IndexError: index -1 is out of bounds for axis 0 with size 0 (at {where})"
    assert failure.error.message.split(": ", 1)[1].startswith(expected)  # the step failure's own message
    assert "Exceeded max_retries" not in failure.error.message
    assert str(root_error(failure.error)) == expected
    metadata = {k: v.value for k, v in failure.user_failure_data.metadata.items()}
    assert metadata["error_type"] == "IndexError" and metadata["raised_at"] == where


def test_an_unknown_symbol_fails_at_once_without_asking_for_candles(db_url, tmp_path, replay):
    resources = {
        "warehouse": WarehouseResource(database_url=db_url.render_as_string(hide_password=False)),
        "exchanges": ExchangeResource(
            universe_path=universe_file(tmp_path, BINANCE_UNIVERSE.replace("[BTC/USDT]", "[NOPE/USDT]")),
            api_base_url=replay.base_url,
        ),
    }
    started = time.perf_counter()
    result = dg.materialize(
        [market_data.ohlcv], partition_key=BINANCE_DAY, resources=resources, raise_on_error=False
    )

    assert not result.success
    assert "STEP_UP_FOR_RETRY" not in _events(result, "ohlcv")
    assert replay.count("/api/v3/klines") == 0 and replay.count("/api/v3/exchangeInfo") == 1
    root = root_error(_failure(result, "ohlcv").error)
    assert root.type == "BadSymbol" and "NOPE/USDT" in root.message
    assert root.location and root.location.startswith(
        "resources/exchanges/instruments.py"
    )  # from the markets
    assert time.perf_counter() - started < 30  # no back-off (a retry would wait 15 s or more)


def test_a_rate_limit_outlasting_the_in_call_back_off_retries_the_step_which_then_succeeds(
    db_url, tmp_path, replay
):
    replay.fail_with["/api/v3/klines"] = [429]
    resources = {
        "warehouse": WarehouseResource(database_url=db_url.render_as_string(hide_password=False)),
        "exchanges": ExchangeResource(
            universe_path=universe_file(tmp_path, BINANCE_UNIVERSE),
            api_base_url=replay.base_url,
            backoff_max_retries=0,  # no retry inside the call: the step's retry must do it
            step_retry_base_seconds=0.05,
        ),
    }
    result = dg.materialize([market_data.ohlcv], partition_key=BINANCE_DAY, resources=resources)

    assert result.success
    events = _events(result, "ohlcv")
    assert events.count("STEP_UP_FOR_RETRY") == 1 and events.count("STEP_RESTARTED") == 1
    (retry,) = [e for e in result.all_events if e.event_type_value == "STEP_UP_FOR_RETRY"]
    assert 0.0375 <= retry.event_specific_data.seconds_to_wait <= 0.0625  # base ± 25 % jitter
    # ccxt raised its rate-limit error while handling requests' HTTPError: the root is the 429 itself.
    root = root_error(retry.event_specific_data.error)
    assert root.type == "HTTPError" and "429" in root.message
    assert root.location.startswith("requests/models.py:")
    assert replay.statuses[429] == 1
    (mat,) = result.get_asset_materialization_events()
    assert mat.materialization.metadata["rows_inserted"].value == 24  # the whole recorded day


def test_a_database_lock_timeout_is_retried_and_the_retry_loads_the_day(db_url, tmp_path):
    admin = create_engine(db_url, isolation_level="AUTOCOMMIT", poolclass=sa.NullPool)
    with admin.connect() as conn:
        conn.execute(sa.text(f"ALTER DATABASE \"{db_url.database}\" SET lock_timeout = '200ms'"))
    holder = create_engine(db_url, poolclass=sa.NullPool)
    released = threading.Event()

    def hold_until_the_first_try_gave_up(conn: sa.Connection) -> None:
        _wait_for_lock_waiters(admin, 1)  # the step's first try waits on the lock ...
        query = sa.text("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'")
        with admin.connect() as watch:
            while watch.execute(query).scalar_one():  # ... until its lock_timeout ends it
                time.sleep(0.005)
        conn.rollback()
        released.set()

    resources = {
        "warehouse": WarehouseResource(database_url=db_url.render_as_string(hide_password=False)),
        "exchanges": ExchangeResource(
            universe_path=universe_file(tmp_path, SYNTHETIC_UNIVERSE), step_retry_base_seconds=0.5
        ),
    }
    try:
        with holder.connect() as conn:
            conn.execute(sa.text("LOCK TABLE ohlcv IN ACCESS EXCLUSIVE MODE"))
            releaser = threading.Thread(target=hold_until_the_first_try_gave_up, args=(conn,))
            releaser.start()
            result = dg.materialize([market_data.ohlcv], partition_key=DAY, resources=resources)
            releaser.join(timeout=60)
    finally:
        holder.dispose()
        admin.dispose()

    assert released.is_set() and result.success
    events = _events(result, "ohlcv")
    assert events.count("STEP_UP_FOR_RETRY") == 1
    (retry,) = [e for e in result.all_events if e.event_type_value == "STEP_UP_FOR_RETRY"]
    assert root_error(retry.event_specific_data.error).type == "LockNotAvailable"
    (mat,) = result.get_asset_materialization_events()
    assert mat.materialization.metadata["rows_inserted"].value == 24


def test_generator_ops_are_wrapped_too():
    calls: list[int] = []

    @dg.op
    @retry_transient(lambda context: Backoff(base_delay=0.01, max_retries=2))
    def flaky(context):
        calls.append(context.retry_number)
        if context.retry_number == 0:
            raise ccxt.ExchangeNotAvailable("503")
        yield dg.Output(1)

    @dg.op
    @retry_transient(lambda context: Backoff(base_delay=0.01, max_retries=2))
    def broken(context):
        calls.append(-1)
        raise KeyError("close")
        yield dg.Output(1)  # a generator op

    @dg.job
    def both():
        flaky()
        broken()

    result = both.execute_in_process(raise_on_error=False)
    assert calls.count(-1) == 1 and sorted(c for c in calls if c >= 0) == [0, 1]
    assert result.output_for_node("flaky") == 1
    assert root_error(_failure(result, "broken").error).type == "KeyError"


def test_the_market_data_steps_have_no_retry_policy_and_jobs_no_run_retry_on_step_failure():
    specs = {key.to_user_string(): d for d in market_data.defs.assets for key in d.keys}
    for name in market_data.MARKET_DATA_ASSETS:
        assert specs[name].op.retry_policy is None  # retries come from `retry_transient`, transient only
    assert market_data.find_gaps.retry_policy is None and market_data.backfill_gaps.retry_policy is None
    for job in (market_data.market_data_job, market_data.gap_backfill_job):
        assert job.tags["dagster/retry_on_asset_or_op_failure"] == "false"


# --------------------------------------------------------------------------------------------------------
# The demo's progress lines and summary
# --------------------------------------------------------------------------------------------------------


def test_the_demo_names_the_root_error_of_a_failed_step_and_the_retries(db_url, tmp_path, monkeypatch):
    Faults(monkeypatch, "fetch_ohlcv", ccxt.RequestTimeout("read timed out"), *[IndexError("no session")] * 3)
    lines: list[str] = []
    report = demo.DemoReport(window=(DAY, DAY))
    progress = demo.Progress(lines.append, report, quiet=False)
    defs = dg.Definitions(
        assets=[market_data.ohlcv],
        jobs=[dg.define_asset_job("failing", selection=["ohlcv"])],
        resources={
            "warehouse": WarehouseResource(database_url=db_url.render_as_string(hide_password=False)),
            "exchanges": ExchangeResource(
                universe_path=universe_file(tmp_path, SYNTHETIC_UNIVERSE),
                backoff_max_retries=0,  # the timeout goes to the step's retry, not the call's
                step_retry_base_seconds=0.01,
            ),
        },
        loggers={"demo_progress": demo.progress_logger(progress), "console": dg.colored_console_logger},
    )
    result = defs.resolve_job_def("failing").execute_in_process(
        run_config=demo.quiet_run_config(),
        partition_key=DAY,
        raise_on_error=False,
    )
    logging.getLogger("market_warehouse.demo.progress").handlers = []

    assert not result.success
    where = f"{THIS_FILE}:{raise_line('FAULT-RAISE')}"
    assert report.failures == [demo.StepFailure("ohlcv", f"IndexError: no session (at {where})")]
    assert any(line.startswith("  retry ohlcv in 0.0s: RequestTimeout: read timed out") for line in lines), (
        lines
    )
    assert f"  FAIL  ohlcv: IndexError: no session (at {where})" in lines
    summary: list[str] = []
    demo.print_summary(report, summary.append)
    assert f"  failed step: ohlcv: IndexError: no session (at {where})" in summary
    assert not any("Exceeded max_retries" in line for line in lines + summary)
