"""Issue 11, part 3: no default deletes data, every drop is recorded, and `maintenance plan` says it first.

On every backend (embedded PostgreSQL; TimescaleDB full / Apache-only when TIMESCALEDB_URL /
TIMESCALEDB_APACHE_URL are set): a migrated history, loaded through the landing folder like a freqtrade
export, survives nightly runs when no retention is configured; with retention configured, exactly the
configured pieces go, each with one `system_events` row, and the plan made beforehand listed exactly those.
The plan runs in a READ ONLY transaction and leaves the database as it found it.

Ohlcv pieces are 7-day ranges aligned on the Unix epoch on every backend (TimescaleDB chunks and the native
partitions alike), so the tests place their candles in known pieces.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
import pytest
import sqlalchemy as sa
import yaml
from sqlalchemy.engine import URL

from market_warehouse.resources import clock
from market_warehouse.resources.database import create_engine
from market_warehouse.resources.files.landing import load_landing_folder
from market_warehouse.resources.maintenance import retention
from market_warehouse.resources.maintenance.aggregates import DAY, HOUR, floor_to
from market_warehouse.resources.maintenance.plan import plan_maintenance, read_only
from market_warehouse.resources.maintenance.policy import DEFAULT_POLICY, load_policy
from market_warehouse.resources.models import TIMESERIES
from market_warehouse.resources.universe_file import universe_path
from market_warehouse.resources.warehouse import upsert_dataframe
from tests.maintenance_data import candles, caps_of, count, pieces_of, trades

NOW = floor_to(clock.now(), HOUR)
UNIX_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
WEEK = timedelta(days=7)
RETENTION = {"ohlcv": {"1m": "90d"}, "market_trades": "30d"}


def piece_start(ts: datetime, every: timedelta = WEEK) -> datetime:
    """Start of the epoch-aligned piece holding `ts` (how chunks and partitions are both laid out)."""
    return UNIX_EPOCH + ((ts - UNIX_EPOCH) // every) * every


def freqtrade_file(folder: Path, relative: str, start: datetime, count: int, step: timedelta) -> Path:
    """A freqtrade-style export: [[ms, open, high, low, close, volume], ...]."""
    rows = []
    for i in range(count):
        ms = int((start + i * step).timestamp() * 1000)
        price = 100.0 + (i % 50) * 0.1
        rows.append([ms, price, price + 1, price - 1, price + 0.5, 3.0 + i % 7])
    path = folder / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(rows))
    return path


def migrate_files(engine: sa.Engine, folder: Path) -> None:
    """Load the landing folder the way the `historical_files` asset does."""
    report = load_landing_folder(engine, folder)
    assert not [f for f in report.files if f.status == "failed"], report


def universe_with(tmp: Path, maintenance: dict | None) -> Path:
    """The shipped universe with its `maintenance:` section replaced (None: removed)."""
    raw = yaml.safe_load(universe_path(None).read_text())
    raw.pop("maintenance", None)
    if maintenance is not None:
        raw["maintenance"] = maintenance
    path = tmp / "universe.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def run_nightly(url: URL, universe: Path | None = None) -> dg.ExecuteInProcessResult:
    """The real `nightly_maintenance` job, in process, with the policy of `universe` (None: the shipped one)."""
    from market_warehouse.pipelines.defs.maintenance import POLICY_OPS
    from market_warehouse.pipelines.defs.maintenance import defs as maintenance_defs
    from market_warehouse.resources.dagster_resources import WarehouseResource

    warehouse = WarehouseResource(database_url=url.render_as_string(hide_password=False))
    defs = dg.Definitions.merge(maintenance_defs, dg.Definitions(resources={"warehouse": warehouse}))
    config = {"ops": {op: {"config": {"universe": str(universe)}} for op in POLICY_OPS}} if universe else None
    result = defs.get_job_def("nightly_maintenance").execute_in_process(run_config=config)
    assert result.success
    return result


def step_metadata(result: dg.ExecuteInProcessResult) -> dict[str, dict]:
    return {
        e.step_key: e.event_specific_data.metadata
        for e in result.all_events
        if e.event_type_value == "STEP_OUTPUT"
    }


def retention_events(engine: sa.Engine) -> list[dict]:
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT event_type, severity, component, message, details FROM system_events "
                "WHERE source = 'maintenance' ORDER BY id"
            )
        ).mappings()
        return [dict(r) for r in rows]


def snapshot(engine: sa.Engine) -> dict[str, object]:
    """Everything a maintenance step could change: pieces and their state, rows per table and in DEFAULT,
    the dirty log, the aggregates, the event log, and every relation of the database."""
    caps = caps_of(engine)
    out: dict[str, object] = {}
    with engine.connect() as conn:
        for table in TIMESERIES:
            out[f"{table}/pieces"] = sorted((n, p.compressed) for n, p in pieces_of(engine, table).items())
            out[f"{table}/rows"] = conn.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar_one()
            if caps.native_partitions:
                out[f"{table}/default"] = conn.execute(
                    sa.text(f"SELECT count(*) FROM {table}_default")
                ).scalar_one()
        for table in ("aggregate_dirty_windows", "system_events", "ohlcv_1h", "ohlcv_1d"):
            out[table] = conn.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar_one()
        out["relations"] = conn.execute(
            sa.text("SELECT count(*), md5(string_agg(oid::text, ',' ORDER BY oid)) FROM pg_class")
        ).one()
    return out


def removed_rows(actions) -> list[tuple]:
    """What identifies a removal: table, piece, action, intervals, range and rows (bytes vary, see below)."""
    return sorted(
        (a["table"], a["piece"], a["action"], a["intervals"], a["range_start"], a["range_end"], a["rows"])
        for a in actions
    )


# ----------------------------------------------------------------------------------------------- default


def test_the_default_policy_and_the_shipped_universe_keep_everything():
    assert DEFAULT_POLICY.retention == {}
    shipped = load_policy()
    assert shipped.retention == {} and shipped.retention_for("ohlcv", "1m") is None
    assert shipped.describe()["retention"] == "none configured: everything is kept"
    # The example stays in the shipped file, commented out, next to the reason.
    text = universe_path(None).read_text()
    assert "#   ohlcv: {1m: 90d}" in text and "keep everything" in text.lower()


def test_a_migrated_history_survives_nightly_runs_without_retention(any_backend_url, safe_tmp):
    """The issue's scenario: 13,681 one-minute candles from 2017 plus two days a year old, then nights."""
    engine = create_engine(any_backend_url)
    try:
        landing = safe_tmp / "landing"
        freqtrade_file(
            landing,
            "binance/UNITTEST_BTC-1m.json",
            datetime(2017, 11, 14, 21, 17, tzinfo=UTC),
            13_681,
            HOUR / 60,
        )
        year_ago = floor_to(NOW - timedelta(days=365), DAY)
        freqtrade_file(landing, "binance/BTC_USDT-1m.json", year_ago, 2 * 1440, HOUR / 60)
        migrate_files(engine, landing)
        total = 13_681 + 2 * 1440
        assert count(engine, "SELECT count(*) FROM ohlcv WHERE interval = '1m'") == total
        bounds = count(engine, "SELECT array[min(time), max(time)]::text FROM ohlcv")

        plan = plan_maintenance(engine, load_policy())
        assert plan.drops == [] and plan.summary()["rows_to_remove"] == 0
        assert "4. apply retention: nothing (no retention configured: everything is kept)" in plan.text()

        # Three nights: today, a month later and two years later (the clock is an input, as in production).
        for night in (NOW, NOW + timedelta(days=30), NOW + timedelta(days=730)):
            with clock.frozen(night):
                meta = step_metadata(run_nightly(any_backend_url))
            assert meta["plan_maintenance"]["pieces_to_drop"].value == 0
            assert meta["apply_retention"]["pieces_dropped"].value == 0
            assert meta["apply_retention"]["retention"].value == "none configured: everything is kept"
            assert meta["apply_retention"]["removed"].value.records == []
            assert count(engine, "SELECT count(*) FROM ohlcv WHERE interval = '1m'") == total
        assert count(engine, "SELECT array[min(time), max(time)]::text FROM ohlcv") == bounds
        assert retention_events(engine) == []
        # The history was aggregated, not lost: 2017's 13,681 minutes are in the hourly buckets too.
        assert count(engine, "SELECT sum(candle_count) FROM ohlcv_1h") == total
    finally:
        engine.dispose()


# ------------------------------------------------------------------------------------ configured retention


def seed_for_retention(engine: sa.Engine, landing: Path) -> dict[str, object]:
    """Year-old pieces with known content, plus data the policy must keep. Returns what the test expects.

    - piece A (a year ago): 1m candles and 1d candles → the 1m rows are deleted, the 1d ones stay;
    - piece B (the week after): only 1m candles of another pair → dropped whole;
    - piece C (the week after B): 5m candles only → kept (5m has no retention);
    - recent 1m candles, a recent day of trades → kept; a day of trades 40 days old → dropped.
    """
    a = piece_start(NOW - timedelta(days=365)) + timedelta(days=1)
    b, c = a + WEEK, a + 2 * WEEK
    freqtrade_file(landing, "binance/BTC_USDT-1m.json", a, 3 * 1440, HOUR / 60)
    freqtrade_file(landing, "binance/BTC_USDT-1d.json", a, 5, DAY)
    freqtrade_file(landing, "binance/ETH_USDT-1m.json", b, 1440, HOUR / 60)
    freqtrade_file(landing, "binance/ETH_USDT-5m.json", c, 288, HOUR / 12)
    migrate_files(engine, landing)
    upsert_dataframe(engine, "ohlcv", candles("BTC/USDT", NOW - timedelta(days=2), 120))
    old_trades = floor_to(NOW - timedelta(days=40), DAY) + timedelta(hours=3)
    upsert_dataframe(engine, "market_trades", trades(old_trades, 5))
    upsert_dataframe(engine, "market_trades", trades(floor_to(NOW - timedelta(days=2), DAY), 7))
    ohlcv, market_trades = pieces_of(engine, "ohlcv"), pieces_of(engine, "market_trades")

    def holding(pieces: dict, ts: datetime):
        return next(p for p in pieces.values() if p.start <= ts < p.end)

    piece_a, piece_b = holding(ohlcv, a), holding(ohlcv, b)
    assert (piece_a.start, piece_a.end, piece_b.start) == (a - DAY, a - DAY + WEEK, b - DAY)
    piece_t = holding(market_trades, old_trades)
    return {
        "expected": sorted(
            [
                ("market_trades", f"{piece_t.schema}.{piece_t.name}", retention.DROPPED, "all", piece_t, 5),
                (
                    "ohlcv",
                    f"{piece_a.schema}.{piece_a.name}",
                    retention.ROWS_DELETED,
                    "1m",
                    piece_a,
                    3 * 1440,
                ),
                ("ohlcv", f"{piece_b.schema}.{piece_b.name}", retention.DROPPED, "1m", piece_b, 1440),
            ],
            key=lambda e: e[:2],
        ),
        "old_1m_range": (a, c),
    }


def expected_removals(expected: list[tuple]) -> list[tuple]:
    return sorted(
        (table, piece, action, intervals, p.start.isoformat(), p.end.isoformat(), rows)
        for table, piece, action, intervals, p, rows in expected
    )


def test_configured_retention_drops_exactly_the_planned_pieces_and_records_each(any_backend_url, safe_tmp):
    engine = create_engine(any_backend_url)
    try:
        caps = caps_of(engine)
        seeded = seed_for_retention(engine, safe_tmp / "landing")
        universe = universe_with(safe_tmp, {"retention": RETENTION})
        policy = load_policy(universe)
        before = {
            "1d": count(engine, "SELECT count(*) FROM ohlcv WHERE interval = '1d'"),
            "5m": count(engine, "SELECT count(*) FROM ohlcv WHERE interval = '5m'"),
            "recent_1m": count(
                engine, "SELECT count(*) FROM ohlcv WHERE interval = '1m' AND time > :t", t=NOW - 3 * DAY
            ),
            "recent_trades": count(
                engine, "SELECT count(*) FROM market_trades WHERE time > :t", t=NOW - 3 * DAY
            ),
        }

        state = snapshot(engine)
        plan = plan_maintenance(engine, policy)
        assert snapshot(engine) == state  # planning changed nothing
        expected = expected_removals(seeded["expected"])
        planned = [d.record() for d in plan.drops]
        assert removed_rows(planned) == expected
        assert all(d["bytes"] > 0 for d in planned if d["action"] == retention.DROPPED)
        assert all(d["bytes"] is None for d in planned if d["action"] == retention.ROWS_DELETED)
        assert plan.summary()["rows_to_remove"] == 5 + 3 * 1440 + 1440

        result = run_nightly(any_backend_url, universe)
        meta = step_metadata(result)
        assert removed_rows(meta["plan_maintenance"]["plan_json"].value["apply_retention"]) == expected
        table = [dict(r.data) for r in meta["apply_retention"]["removed"].value.records]
        assert removed_rows(table) == expected  # what the step says it removed
        assert meta["apply_retention"]["ohlcv[1m]"].value == "90d"

        events = retention_events(engine)
        assert len(events) == 3  # one per piece, nothing else
        assert removed_rows([e["details"] for e in events]) == expected
        assert {e["event_type"] for e in events} == {"retention_drop", "retention_delete"}
        assert {(e["severity"], e["component"]) for e in events} == {("info", "retention")}
        run_ids = {e["details"]["run_id"] for e in events}
        assert run_ids == {result.run_id}
        for event in events:
            details = event["details"]
            assert f"{details['rows']:,} rows of {details['table']}" in event["message"]
            if details["table"] == "ohlcv":
                assert details["rows_by_interval"] == {"1m": details["rows"]}
            if details["action"] == retention.DROPPED:
                assert details["bytes"] > 0
                if not caps.compression:  # no columnstore conversion between plan and drop: same size
                    planned_bytes = {d["piece"]: d["bytes"] for d in planned}
                    assert details["bytes"] == planned_bytes[details["piece"]]

        # Exactly those rows are gone; other intervals, other tables and recent data stay.
        start, end = seeded["old_1m_range"]
        assert count(engine, "SELECT count(*) FROM ohlcv WHERE interval = '1m' AND time < :t", t=end) == 0
        assert count(engine, "SELECT count(*) FROM ohlcv WHERE interval = '1d'") == before["1d"] == 5
        assert count(engine, "SELECT count(*) FROM ohlcv WHERE interval = '5m'") == before["5m"] == 288
        assert count(engine, "SELECT count(*) FROM ohlcv WHERE interval = '1m'") == before["recent_1m"] == 120
        assert count(engine, "SELECT count(*) FROM market_trades") == before["recent_trades"] == 7
        # The dropped minutes were aggregated before they went (refresh → retention in the same run).
        assert (
            count(
                engine,
                "SELECT sum(candle_count) FROM ohlcv_1h WHERE bucket >= :a AND bucket < :b",
                a=start,
                b=end,
            )
            == 4 * 1440
        )

        # The next night has nothing left to do, and says so beforehand.
        assert plan_maintenance(engine, policy).drops == []
        again = step_metadata(run_nightly(any_backend_url, universe))
        assert again["apply_retention"]["pieces_dropped"].value == 0
        assert len(retention_events(engine)) == 3
    finally:
        engine.dispose()


# ------------------------------------------------------------------------------------------ the plan itself


def test_the_plan_predicts_every_step_and_changes_nothing(any_backend_url, safe_tmp):
    """A state where every step has work; the plan changes nothing, then the steps do what it said."""
    from market_warehouse.resources.maintenance import aggregates, compression, partitions

    engine = create_engine(any_backend_url)
    try:
        caps = caps_of(engine)
        seed_for_retention(engine, safe_tmp / "landing")
        upsert_dataframe(engine, "ohlcv", candles("BTC/USDT", NOW - timedelta(days=30), 60))  # to compress
        if caps.native_partitions:  # rows written past the upsert land in DEFAULT: the plan must see them
            with engine.begin() as conn:
                conn.execute(
                    sa.text(
                        "INSERT INTO market_trades (exchange, symbol, trade_id, time, price, amount) "
                        "VALUES ('testex', 'BTC/USDT', 'x', :t, 1, 1)"
                    ),
                    {"t": datetime(2001, 5, 17, 12, tzinfo=UTC)},
                )
        policy = load_policy(universe_with(safe_tmp, {"retention": RETENTION}))
        state = snapshot(engine)
        plan = plan_maintenance(engine, policy, now=NOW)
        assert snapshot(engine) == state

        assert plan.refresh.dirty_hours > 0
        if caps.native_partitions:
            from_default = [p for p in plan.partitions if p.rows_from_default]
            assert [(p.table, p.start, p.rows_from_default) for p in from_default] == [
                ("market_trades", datetime(2001, 5, 17, tzinfo=UTC), 1)
            ]
        else:
            assert plan.partitions == []
        if caps.compression:
            assert plan.compression.chunks
        else:
            assert plan.compression.status == f"unavailable on this backend ({caps.backend.value})"

        # Now the steps, in the nightly order, at the same instant.
        created = partitions.manage_partitions(engine, now=NOW, caps=caps)
        assert sum(created.created_ahead.values()) + sum(created.created_for_default.values()) == len(
            plan.partitions
        )
        refreshed = aggregates.refresh_aggregates(engine, caps)
        assert refreshed.dirty_hours == plan.refresh.dirty_hours
        assert refreshed.hour_windows == plan.refresh.hour_windows
        compressed = compression.compress_chunks(engine, policy, now=NOW, caps=caps)
        assert compressed.chunks_converted == len(plan.compression.chunks)
        removed = retention.apply_retention(engine, policy, now=NOW, caps=caps)
        assert removed_rows([a.record() for a in removed.removed]) == removed_rows(
            [d.record() for d in plan.drops]
        )
    finally:
        engine.dispose()


def test_the_plan_transaction_refuses_writes(engine):
    with pytest.raises(sa.exc.InternalError, match="read-only transaction"), read_only(engine) as conn:
        conn.execute(
            sa.text(
                "INSERT INTO system_events (severity, source, event_type, message) "
                "VALUES ('info', 'test', 'write', 'must fail')"
            )
        )
    assert count(engine, "SELECT count(*) FROM system_events") == 0


# ---------------------------------------------------------------------------------------------------- CLI


def _cli(*args: str, url: URL) -> subprocess.CompletedProcess:
    env = {**os.environ, "DATABASE_URL": url.render_as_string(hide_password=False)}
    return subprocess.run(
        [sys.executable, "-m", "market_warehouse.pipelines.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )


def test_cli_maintenance_plan_prints_the_plan_and_changes_nothing(any_backend_url, safe_tmp):
    engine = create_engine(any_backend_url)
    try:
        seeded = seed_for_retention(engine, safe_tmp / "landing")
        universe = universe_with(safe_tmp, {"retention": RETENTION})
        state = snapshot(engine)

        shipped = _cli("maintenance", "plan", url=any_backend_url)
        assert shipped.returncode == 0, shipped.stderr
        assert "4. apply retention: nothing (no retention configured: everything is kept)" in shipped.stdout

        text = _cli("maintenance", "plan", "--universe", str(universe), url=any_backend_url)
        assert text.returncode == 0, text.stderr
        assert "nothing was changed" in text.stdout
        assert "4. apply retention: drop 2 pieces" in text.stdout
        assert f"{5 + 4 * 1440:,} rows in all" in text.stdout
        for _, piece, *_ in seeded["expected"]:
            assert piece.split(".")[-1] in text.stdout

        as_json = _cli("maintenance", "plan", "--json", "--universe", str(universe), url=any_backend_url)
        assert as_json.returncode == 0, as_json.stderr
        payload = json.loads(as_json.stdout)
        assert removed_rows(payload["apply_retention"]) == expected_removals(seeded["expected"])
        assert payload["summary"]["rows_to_remove"] == 5 + 4 * 1440
        assert payload["backend"] == caps_of(engine).backend.value

        assert snapshot(engine) == state
    finally:
        engine.dispose()
