"""Migration 0005 (issue 13): candles keep their values as price kind 'trade', on every backend and back.

Each test builds its database at revision 0004 with candles in it (compressed chunks on TimescaleDB full),
upgrades to head, then downgrades: the downgrade refuses while other price kinds exist.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from uuid import uuid4

import pandas as pd
import pytest
import sqlalchemy as sa

from market_warehouse.resources.backend import detect
from market_warehouse.resources.database import create_engine, drop_database
from market_warehouse.resources.maintenance.aggregates import refresh_aggregates
from market_warehouse.resources.schema import check, current_revision, downgrade, head_revision, upgrade
from market_warehouse.resources.sqlfiles import sql_text
from market_warehouse.resources.warehouse.upsert import upsert_dataframe
from tests.databases import create_database, timescaledb_server_url

START = datetime(2026, 11, 2, tzinfo=UTC)
MINUTES = 150  # 1m candles: hours 00, 01 whole and 02 half
SYMBOLS = ("BTC/USDT", "ETH/USDT")
CANDLE_COLUMNS = "exchange, symbol, interval, time, open, high, low, close, volume, quote_volume"


@pytest.fixture(params=["postgres", "timescaledb", "timescaledb-apache"])
def backend_engine(request) -> Iterator[sa.Engine]:
    """An engine on an empty database of each backend (TimescaleDB ones skip without their URL)."""
    if request.param == "postgres":
        server = request.getfixturevalue("server_url")
    else:
        server = timescaledb_server_url(request.param)
    url = create_database(server, f"mw_i13_{request.param.replace('-', '_')}_{uuid4().hex[:8]}")
    engine = create_engine(url, poolclass=sa.NullPool)
    yield engine
    engine.dispose()
    drop_database(url)


def _candles(symbol: str, offset: float) -> list[dict]:
    rows = []
    for minute in range(MINUTES):
        price = 100.0 + offset + minute
        rows.append(
            {
                "exchange": "binance",
                "symbol": symbol,
                "interval": "1m",
                "time": START + timedelta(minutes=minute),
                "open": price,
                "high": price + 2,
                "low": price - 1,
                "close": price + 1,
                "volume": 1.0 + minute,
                "quote_volume": None if minute % 7 else 3.5,
            }
        )
    return rows


def _load_old_candles(engine: sa.Engine) -> None:
    """Candles as a 0004 warehouse holds them (no price column), 1m and one 1h candle."""
    rows = [row for i, symbol in enumerate(SYMBOLS) for row in _candles(symbol, 1000.0 * i)]
    rows.append({**rows[0], "interval": "1h", "volume": 60.0})
    insert = sa.text(
        f"INSERT INTO ohlcv ({CANDLE_COLUMNS}) VALUES "
        "(:exchange, :symbol, :interval, :time, :open, :high, :low, :close, :volume, :quote_volume)"
    )
    with engine.begin() as conn:
        conn.execute(insert, rows)
        if detect(conn).compression:  # the migration must handle compressed chunks
            compressed = conn.execute(
                sa.text("SELECT count(compress_chunk(c)) FROM show_chunks('ohlcv') AS c")
            ).scalar_one()
            assert compressed >= 1


def _stored(engine: sa.Engine) -> list[tuple]:
    with engine.connect() as conn:
        return [
            tuple(r)
            for r in conn.execute(
                sa.text(f"SELECT {CANDLE_COLUMNS} FROM ohlcv ORDER BY exchange, symbol, interval, time")
            )
        ]


def _primary_key(engine: sa.Engine) -> list[str]:
    query = sa.text(
        "SELECT a.attname FROM pg_index i "
        "JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, n) ON true "
        "JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum "
        "WHERE i.indrelid = 'ohlcv'::regclass AND i.indisprimary ORDER BY k.n"
    )
    with engine.connect() as conn:
        return list(conn.execute(query).scalars())


def _hourly(engine: sa.Engine) -> dict[tuple, tuple]:
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text("SELECT symbol, price, bucket, open, close, volume, candle_count FROM ohlcv_1h")
        ).all()
    return {(r.symbol, r.price, r.bucket): (r.open, r.close, r.volume, r.candle_count) for r in rows}


def _upsert_mark(engine: sa.Engine) -> None:
    """A mark-price candle on the very key (exchange, symbol, interval, time) of a stored trade candle,
    through the upsert (which records its hour for the aggregates)."""
    frame = pd.DataFrame(
        [{"exchange": "binance", "symbol": "BTC/USDT", "interval": "1m", "price": "mark", "time": START}]
    ).assign(open=7.0, high=8.0, low=6.0, close=7.5, volume=0.0)
    assert upsert_dataframe(engine, "ohlcv", frame).inserted == 1


def _segmentby(engine: sa.Engine) -> str | None:
    with engine.connect() as conn:
        if not detect(conn).compression:
            return None
        rows = conn.execute(sql_text("backup/compression_settings")).mappings()
        return next(r["segmentby"] for r in rows if r["hypertable"] == "ohlcv")


def test_upgrade_keeps_candles_as_trade_and_downgrade_restores_the_old_key(backend_engine):
    engine = backend_engine
    upgrade(engine, "0004")
    _load_old_candles(engine)
    before = _stored(engine)
    old_segmentby = _segmentby(engine)

    upgrade(engine)
    assert current_revision(engine) == head_revision()
    check(engine)  # models == database on this backend
    assert _stored(engine) == before
    with engine.connect() as conn:
        kinds = conn.execute(sa.text("SELECT price, count(*) FROM ohlcv GROUP BY price")).all()
    assert kinds == [("trade", len(before))]
    assert _primary_key(engine) == ["exchange", "symbol", "interval", "price", "time"]
    if old_segmentby is not None:
        assert "price" in _segmentby(engine).replace(" ", "").split(",")

    # The aggregates were rebuilt per price kind from the queued hours of the existing candles.
    refresh_aggregates(engine)
    hourly = _hourly(engine)
    assert len(hourly) == len(SYMBOLS) * 3
    first = hourly[("BTC/USDT", "trade", START)]
    assert first == (100.0, 160.0, sum(1.0 + m for m in range(60)), 60)
    assert hourly[("ETH/USDT", "trade", START + timedelta(hours=2))][3] == MINUTES - 120

    _upsert_mark(engine)
    refresh_aggregates(engine)
    hourly = _hourly(engine)
    assert hourly[("BTC/USDT", "trade", START)] == first  # not mixed with the mark candle
    assert hourly[("BTC/USDT", "mark", START)] == (7.0, 7.5, 0.0, 1)

    with pytest.raises(Exception, match=r"refused.*mark: 1 rows"):
        downgrade(engine, "0004")
    assert current_revision(engine) == head_revision()
    with engine.begin() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM ohlcv WHERE price = 'mark'")).scalar_one() == 1
        conn.execute(sa.text("DELETE FROM ohlcv WHERE price = 'mark'"))

    downgrade(engine, "0004")
    assert current_revision(engine) == "0004"
    assert _stored(engine) == before
    assert _primary_key(engine) == ["exchange", "symbol", "interval", "time"]
    assert _segmentby(engine) == old_segmentby
    with engine.connect() as conn:
        tables = set(sa.inspect(conn).get_table_names())
        aggregate_columns = conn.execute(sa.text("SELECT * FROM ohlcv_1h LIMIT 0")).keys()
    assert not {"instruments", "funding_rates", "open_interest"} & tables
    assert "price" not in aggregate_columns

    upgrade(engine)  # and up again
    assert _stored(engine) == before
    check(engine)


def test_new_tables_are_time_partitioned_and_keep_their_keys(backend_engine):
    engine = backend_engine
    upgrade(engine)
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO funding_rates (exchange, symbol, time, rate, interval) "
                "VALUES ('binance', 'BTC/USDT:USDT', :t, 0.0001, '8h'), "
                "('binance', 'BTC/USDT:USDT', :t2, -0.0002, '4h')"
            ),
            {"t": START, "t2": START + timedelta(hours=4)},
        )
        conn.execute(
            sa.text(
                "INSERT INTO open_interest (exchange, symbol, interval, time, amount, value) "
                "VALUES ('binance', 'BTC/USDT:USDT', '1h', :t, 10, 1000000)"
            ),
            {"t": START},
        )
        conn.execute(
            sa.text(
                "INSERT INTO instruments (exchange, symbol, type, base, quote, settle, linear, inverse) "
                "VALUES ('binance', 'BTC/USDT:USDT', 'swap', 'BTC', 'USDT', 'USDT', true, false)"
            )
        )
        with pytest.raises(sa.exc.IntegrityError, match="derivative_settle"), conn.begin_nested():
            conn.execute(
                sa.text(
                    "INSERT INTO instruments (exchange, symbol, type, base, quote) "
                    "VALUES ('binance', 'BTC/USD:BTC', 'swap', 'BTC', 'USD')"
                )
            )
        with pytest.raises(sa.exc.IntegrityError, match="ck_ohlcv_price"), conn.begin_nested():
            conn.execute(
                sa.text(
                    "INSERT INTO ohlcv (exchange, symbol, interval, time, price, open, high, low, close, "
                    "volume) VALUES ('binance', 'BTC/USDT', '1m', :t, 'last', 1, 1, 1, 1, 1)"
                ),
                {"t": START},
            )
        caps = detect(conn)
        for table in ("funding_rates", "open_interest"):
            if caps.hypertables:
                found = conn.execute(
                    sa.text(
                        "SELECT count(*) FROM timescaledb_information.hypertables WHERE hypertable_name = :t"
                    ),
                    {"t": table},
                ).scalar_one()
            else:
                found = conn.execute(
                    sa.text(
                        "SELECT count(*) FROM pg_partitioned_table WHERE partrelid = CAST(:t AS regclass)"
                    ),
                    {"t": table},
                ).scalar_one()
            assert found == 1, table
    assert current_revision(engine) == head_revision()
