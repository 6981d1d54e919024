"""Lineage rows, content versions and the walk back to landed files and exchange responses."""

from __future__ import annotations

from datetime import UTC, datetime

import pandas as pd
import pytest
import sqlalchemy as sa

from market_warehouse.resources.analytics import lineage
from market_warehouse.resources.models import Coverage, Feature, IngestFile

D = datetime(2024, 3, 2, tzinfo=UTC)


def test_content_version_depends_on_content_only():
    a = pd.DataFrame(
        {"time": pd.to_datetime(["2024-01-01", "2024-01-02"], utc=True), "x": [1.0, float("nan")]}
    )
    assert lineage.content_version(a) == lineage.content_version(a.iloc[::-1])
    assert lineage.content_version(a) != lineage.content_version(a.assign(x=[1.0, 2.0]))
    assert lineage.days_between(D, datetime(2024, 3, 4, tzinfo=UTC)) == ["2024-03-02", "2024-03-03"]
    assert lineage.partition_of(pd.Timestamp("2024-03-02T23:59:59Z")) == "2024-03-02"


def test_trace_from_a_feature_to_files_and_exchange(engine):
    with engine.begin() as conn:
        conn.execute(
            sa.insert(Feature).values(
                exchange="binance", symbol="BTC/USDT", interval="1h", feature_set="core_v1", time=D, rsi=55.0
            )
        )
        conn.execute(
            sa.insert(IngestFile).values(
                path="landing/btc_2024-03.json",
                sha256="ab" * 32,
                size_bytes=1000,
                rows_loaded=744,
                status="loaded",
                first_time=datetime(2024, 3, 1, tzinfo=UTC),
                last_time=datetime(2024, 3, 31, 23, tzinfo=UTC),
                run_id="files-run",
            )
        )
        conn.execute(
            sa.insert(Coverage).values(
                source="ccxt:binance",
                dataset="ohlcv",
                exchange="binance",
                symbol="BTC/USDT",
                interval="1h",
                range_start=D,
                range_end=datetime(2024, 3, 3, tzinfo=UTC),
                rows=24,
                status="complete",
                run_id="ohlcv-run",
            )
        )
        upstream = [
            {"asset_key": "ohlcv", "partition": "2024-03-02", "data_version": "v1", "run_id": "ohlcv-run"},
            {"asset_key": "historical_files", "partition": None, "data_version": "f1", "run_id": "files-run"},
        ]
        first = lineage.record(
            conn, lineage.LineageRecord("features", "2024-03-02", "run-a", "1", "x", upstream, 100, 24)
        )
        second = lineage.record(
            conn, lineage.LineageRecord("features", "2024-03-02", "run-b", "1", "x", upstream, 100, 24)
        )
        audit = lineage.trace(conn, "features", {"symbol": "BTC/USDT", "time": D})
    assert second > first
    # a table without run ids: the latest materialization of its partition answers
    assert [n["run_id"] for n in audit.chain] == ["run-b"]
    kinds = {(s["kind"], s.get("path") or s.get("source")) for s in audit.sources}
    assert kinds == {("file", "landing/btc_2024-03.json"), ("exchange", "ccxt:binance")}
    with engine.connect() as conn, pytest.raises(LookupError, match="no lineage row"):
        conn.execute(sa.update(Feature).values(time=datetime(2024, 3, 5, tzinfo=UTC)))
        lineage.trace(conn, "features", {"symbol": "BTC/USDT"})
