"""Quarantined rows are corrected, re-validated and released: upserted, marked and recorded."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from click.testing import CliRunner
from quality_data import NOW, candles, count, table

from market_warehouse.pipelines.cli import cli
from market_warehouse.resources.quality.quarantine import correct, list_quarantine
from market_warehouse.resources.warehouse.load import load_frame
from market_warehouse.resources.warehouse.release import release


def _load_with_bad_rows(engine):
    frame = candles(6)
    frame.loc[1, "volume"] = -3.0
    frame.loc[4, "high"] = frame.loc[4, "low"] * 0.5
    result = load_frame(engine, "ohlcv", frame, run_id="run-1", partition_key="2024-06-01", now=NOW)
    assert result.quarantined == 2 and result.inserted == 4
    return frame


def test_release_after_correction_upserts_and_records(engine):
    frame = _load_with_bad_rows(engine)
    with engine.connect() as conn:
        waiting = {row.rule: row for row in list_quarantine(conn, table="ohlcv")}
    assert set(waiting) == {"volume_non_negative", "high_ge_open"}
    vol = waiting["volume_non_negative"]

    # Released as is, it still fails: stays in quarantine with the current message.
    outcome = release(engine, [vol.id], run_id="release-0")
    assert outcome.released == [] and vol.id in outcome.still_failing
    assert count(engine, "ohlcv") == 4

    new_data = correct(engine, vol.id, {"volume": 3.0}, changed_by="alice", reason="exchange re-sent")
    assert new_data["volume"] == 3.0
    outcome = release(engine, [vol.id], run_id="release-1")
    assert outcome.released == [vol.id] and outcome.inserted == 1 and not outcome.still_failing

    stored = table(engine, "ohlcv")
    stored["time"] = pd.to_datetime(stored["time"], utc=True)
    row = stored.set_index("time").loc[frame["time"].iloc[1]]
    assert row["volume"] == 3.0 and 0 < row["quality_score"] <= 100

    q = table(engine, "quarantine").set_index("id")
    assert q.loc[vol.id, "released_by_run"] == "release-1" and q.loc[vol.id, "released_at"] is not None
    assert pd.isna(q.loc[waiting["high_ge_open"].id, "released_at"])

    audit = table(engine, "audit_log", "ORDER BY id")
    fix = audit.loc[audit["table_name"] == "quarantine"].iloc[0]
    assert fix["changed_by"] == "alice" and fix["changed_fields"] == ["volume"]
    assert fix["old_data"]["volume"] == -3.0 and fix["new_data"]["volume"] == 3.0
    rel = audit.loc[audit["changed_by"] == "release-1"].iloc[0]
    assert rel["table_name"] == "ohlcv" and rel["operation"] == "insert"
    assert rel["old_data"] == {"quarantine_id": vol.id} and rel["reason"].endswith(f"#{vol.id}")
    assert rel["new_data"]["volume"] == 3.0

    with pytest.raises(LookupError, match="already released"):
        release(engine, [vol.id], run_id="again")


def test_cli_list_correct_and_release(engine, db_url, monkeypatch):
    _load_with_bad_rows(engine)
    monkeypatch.setenv("DATABASE_URL", db_url.render_as_string(hide_password=False))
    runner = CliRunner()
    listed = runner.invoke(cli, ["quarantine", "list", "--table", "ohlcv"])
    assert listed.exit_code == 0, listed.output
    assert "volume_non_negative" in listed.output and "high_ge_open" in listed.output

    q = table(engine, "quarantine").set_index("rule")
    qid = int(q.loc["high_ge_open", "id"])
    high = q.loc["high_ge_open", "row_data"]["open"] * 1.01
    released = runner.invoke(
        cli, ["quarantine", "release", str(qid), "--set", f"high={high}", "--by", "carol"]
    )
    assert released.exit_code == 0, released.output
    assert "released 1 of 1" in released.output
    assert count(engine, "ohlcv") == 5
    listed = runner.invoke(cli, ["quarantine", "list", "--json"])
    assert [r["rule"] for r in json.loads(listed.output)] == ["volume_non_negative"]


def test_release_of_a_correction_to_a_stored_row_is_an_audited_update(engine):
    frame = candles(3)
    load_frame(engine, "ohlcv", frame, run_id="run-1", now=NOW)
    revised = frame.copy()
    revised.loc[1, "volume"] = -2.0  # a revision that fails a rule: the stored row stays as it was
    assert load_frame(engine, "ohlcv", revised, run_id="run-2", now=NOW).quarantined == 1
    qid = int(table(engine, "quarantine")["id"].iloc[0])
    correct(engine, qid, {"volume": 2.5}, changed_by="ops", reason="vendor fix")
    outcome = release(engine, [qid], run_id="release-2")
    assert outcome.released == [qid] and outcome.updated == 1 and outcome.inserted == 0
    audit = table(engine, "audit_log", "ORDER BY id")
    mine = audit.loc[audit["changed_by"] == "release-2"]
    # One row from the upsert's own change audit (old/new values), one recording the release.
    assert set(mine["operation"]) == {"update"} and len(mine) == 2
    archived = table(engine, "timeseries_archive")
    assert len(archived) == 1 and archived["row_data"].iloc[0]["volume"] == pytest.approx(
        frame.loc[1, "volume"]
    )
