"""The one way rows enter the warehouse: validation -> quarantine -> score -> upsert, ONE transaction per batch.

Per batch of at most `batch_rows` rows, in one transaction:

1. row-level split (`resources.quality.split`): built-in rules of the dataset + enabled rows of
   `validation_rules`; rows that cannot be typed fail the pseudo-rule 'parseable';
2. rejected rows -> `quarantine` (raw values, rule, message, run id, partition, source);
3. quality score and `is_anomaly` for tables that carry them (ohlcv, timeseries_data);
4. good rows -> `upsert_frame` (with an `AuditContext` for curated tables: replaced rows are archived);
5. anomalies -> `anomalies`.

Nothing is silently dropped: fetched = inserted + updated + unchanged + quarantined, per batch and in total.
Structural problems (unknown table or column, a key column missing, naive timestamps) raise
`StructuralError` before anything of the batch is written.
"""

from __future__ import annotations

import logging
from collections import Counter
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import sqlalchemy as sa

from market_warehouse.resources import clock
from market_warehouse.resources.columns import UnusableColumn, kind_of, parse
from market_warehouse.resources.quality.quarantine import write_quarantine
from market_warehouse.resources.quality.rules import Rule, load_rules, sync_rules_to_db
from market_warehouse.resources.quality.scores import (
    SCORED,
    ScoreConfig,
    follows,
    load_history,
    score_frame,
    series_bounds,
    with_written,
    write_anomalies,
)
from market_warehouse.resources.quality.split import SplitResult, StructuralError, split_frame, table_of

if TYPE_CHECKING:
    from market_warehouse.resources.warehouse.upsert import PreparedUpsert

log = logging.getLogger(__name__)

# Derived tables are recomputed, not curated: their replaced rows are not archived.
UNAUDITED = frozenset({"features", "forecasts"})

__all__ = ["LoadResult", "StructuralError", "load_batch", "load_frame"]


@dataclass(frozen=True)
class LoadResult:
    dataset: str
    fetched: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    quarantined: int = 0
    quarantine_reasons: dict[str, int] = field(default_factory=dict)  # rule name -> rows
    batches: int = 0
    min_time: datetime | None = None
    max_time: datetime | None = None
    warnings: dict[str, int] = field(default_factory=dict)  # warning rule -> rows kept but down-scored
    anomalies: int = 0  # anomalies rows written

    @property
    def stored(self) -> int:
        return self.inserted + self.updated

    @property
    def balanced(self) -> bool:
        return self.fetched == self.inserted + self.updated + self.unchanged + self.quarantined

    def __add__(self, other: LoadResult) -> LoadResult:
        if not isinstance(other, LoadResult):
            return NotImplemented
        times_min = [t for t in (self.min_time, other.min_time) if t is not None]
        times_max = [t for t in (self.max_time, other.max_time) if t is not None]
        return LoadResult(
            dataset=self.dataset if self.dataset == other.dataset else f"{self.dataset}+{other.dataset}",
            fetched=self.fetched + other.fetched,
            inserted=self.inserted + other.inserted,
            updated=self.updated + other.updated,
            unchanged=self.unchanged + other.unchanged,
            quarantined=self.quarantined + other.quarantined,
            quarantine_reasons=dict(Counter(self.quarantine_reasons) + Counter(other.quarantine_reasons)),
            batches=self.batches + other.batches,
            min_time=min(times_min) if times_min else None,
            max_time=max(times_max) if times_max else None,
            warnings=dict(Counter(self.warnings) + Counter(other.warnings)),
            anomalies=self.anomalies + other.anomalies,
        )

    def as_metadata(self) -> dict[str, object]:
        """Plain values for Dagster metadata and logs."""
        return {
            "dataset": self.dataset,
            "fetched": self.fetched,
            "inserted": self.inserted,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "quarantined": self.quarantined,
            "quarantine_reasons": dict(self.quarantine_reasons),
            "warnings": dict(self.warnings),
            "anomalies": self.anomalies,
            "batches": self.batches,
            "min_time": self.min_time.isoformat() if self.min_time else None,
            "max_time": self.max_time.isoformat() if self.max_time else None,
        }


_SYNCED: set[str] = set()


def _ensure_rules_synced(engine: sa.Engine) -> None:
    """Mirror the code suites into validation_rules once per process and database."""
    marker = engine.url.render_as_string(hide_password=True)
    if marker in _SYNCED:
        return
    with engine.begin() as conn:
        sync_rules_to_db(conn)
    _SYNCED.add(marker)


def _time_column(dataset: str) -> str | None:
    from market_warehouse.resources.models import TIMESERIES

    spec = TIMESERIES.get(dataset)
    return spec.time_column if spec else None


def _py_time(value) -> datetime | None:
    if value is None or pd.isna(value):
        return None
    return pd.Timestamp(value).tz_convert(UTC).to_pydatetime()


@dataclass(frozen=True)
class Scoring:
    """A batch's good rows scored, their anomalies, and the stored versions of the batch's range (read
    under the range's locks: `upsert_frame(stored=...)` skips rows equal to them)."""

    frame: pd.DataFrame
    anomalies: pd.DataFrame
    stored: pd.DataFrame


def _scoring(
    dataset: str,
    split: SplitResult,
    history: pd.DataFrame,
    now: datetime,
    config: ScoreConfig,
) -> Scoring:
    scored = score_frame(dataset, split.good, split.warnings, history, now=now, config=config)
    return Scoring(scored.frame, scored.anomalies, history.loc[history["in_range"].to_numpy(dtype=bool)])


def load_batch(
    conn: sa.Connection,
    dataset: str,
    batch: pd.DataFrame,
    rules: list[Rule],
    *,
    run_id: str | None = None,
    partition_key: str | None = None,
    source: str | None = None,
    now: datetime | None = None,
    score_config: ScoreConfig | None = None,
    quarantine: bool = True,
    split: SplitResult | None = None,
    scoring: Scoring | None = None,
    upsert: PreparedUpsert | None = None,
) -> tuple[LoadResult, SplitResult]:
    """One batch in the caller's transaction. With `quarantine=False` rejected rows are only reported
    (used when releasing rows that are already in quarantine). `split`: the batch's `split_frame` with these
    rules and `now`, when the caller made it already (load_frame, ahead of the write); `scoring`: its
    scores, when the caller computed them from a history read under locks it holds, and `upsert` the
    scored (or, unscored tables, good) rows prepared for the write (load_frame)."""
    from market_warehouse.resources.warehouse.upsert import (
        AuditContext,
        lock_range,
        upsert_frame,
        write_prepared,
    )

    now = now or clock.now()
    split = split if split is not None else split_frame(dataset, batch, rules, now=now)
    if quarantine and len(split.rejected):
        write_quarantine(
            conn,
            dataset,
            split,
            run_id=run_id,
            partition_key=partition_key,
            source=source,
        )
    good = split.good
    anomalies = 0
    inserted = updated = unchanged = 0
    min_time = max_time = None
    if len(good):
        found = stored = None
        if dataset in SCORED:
            config = score_config or ScoreConfig()
            lock_range(conn, dataset, good[_time_column(dataset)])  # before reading: see lock_range
            if scoring is None:
                scoring = _scoring(dataset, split, load_history(conn, dataset, good, config), now, config)
            good, found, stored = scoring.frame, scoring.anomalies, scoring.stored
        audit = None if dataset in UNAUDITED else AuditContext(run_id or "load_frame", "upsert")
        if upsert is not None:
            result = write_prepared(conn, upsert, audit=audit)
        else:
            result = upsert_frame(conn, dataset, good, audit=audit, stored=stored)
        inserted, updated, unchanged = result.inserted, result.updated, result.unchanged
        min_time, max_time = result.min_time, result.max_time
        if min_time is None and (tcol := _time_column(dataset)) and tcol in good:
            min_time, max_time = _py_time(good[tcol].min()), _py_time(good[tcol].max())
        if found is not None and len(found):
            anomalies = write_anomalies(conn, dataset, found, run_id)
    res = LoadResult(
        dataset=dataset,
        fetched=len(batch),
        inserted=inserted,
        updated=updated,
        unchanged=unchanged,
        quarantined=len(split.rejected),
        quarantine_reasons=dict(split.error_counts),
        batches=1,
        min_time=min_time,
        max_time=max_time,
        warnings=dict(split.warning_counts),
        anomalies=anomalies,
    )
    if not res.balanced:
        raise AssertionError(f"{dataset}: load does not balance: {res.as_metadata()}")
    return res, split


def _frame_buckets(dataset: str, frame: pd.DataFrame) -> np.ndarray:
    """The lock buckets of the frame's times as `split_frame` types them (unparseable ones left out: those
    rows are quarantined, never written); none when the time column is missing or unusable (the split
    then fails the batch with the reason)."""
    from market_warehouse.resources.warehouse.upsert import range_buckets

    tcol = _time_column(dataset)
    if tcol is None or tcol not in frame:
        return np.zeros(0, dtype=np.int64)
    try:
        values, bad, _ = parse(frame[tcol], kind_of(table_of(dataset).c[tcol], default="text"))
    except UnusableColumn:
        return np.zeros(0, dtype=np.int64)
    return range_buckets(dataset, values[~bad.to_numpy(dtype=bool)])


@dataclass(frozen=True)
class _Ahead:
    """What a batch needs before its transaction, made in a worker thread while the previous one writes."""

    split: SplitResult
    scoring: Scoring | None = None  # None: scored in the batch's own transaction (load_batch)
    upsert: PreparedUpsert | None = None  # None: prepared in the batch's own transaction
    bounds: pd.DataFrame | None = None  # series_bounds of the good rows, when scored ahead


def _ahead(
    engine: sa.Engine,
    dataset: str,
    split: Future[SplitResult],
    now: datetime,
    config: ScoreConfig,
    previous: _Ahead | None,
    held: np.ndarray,
) -> _Ahead:
    """Take the batch's split (made by another worker) and, when it is safe, score it and prepare its
    upsert ahead of its transaction.

    The history is read on another connection while the previous batch (not committed yet) is being
    written, and completed with that batch's rows (`with_written`): exact when the batch's range is under
    the load's session locks (`held`: nobody else writes it meanwhile) and the previous batch only precedes
    it in each series (`follows`: it can add warm-up rows, not stored versions). Otherwise the batch is
    scored in its transaction, after the previous one committed, as before.
    """
    from market_warehouse.resources.warehouse.upsert import prepare_upsert, range_buckets

    done = split.result()
    good = done.good
    if good.empty:
        return _Ahead(done)
    if dataset not in SCORED:  # nothing read from the database: always prepared ahead
        return _Ahead(done, upsert=prepare_upsert(dataset, good))
    if not np.isin(range_buckets(dataset, good[_time_column(dataset)]), held).all():
        return _Ahead(done)
    bounds = series_bounds(dataset, good)
    written = previous.split.good if previous is not None else None
    if written is not None and len(written):
        earlier = previous.bounds if previous.bounds is not None else series_bounds(dataset, written)
        if not follows(dataset, written, good, earlier_bounds=earlier, bounds=bounds):
            return _Ahead(done)
    with engine.connect() as reader:
        history = load_history(reader, dataset, good, config, bounds=bounds)
    if written is not None and len(written):
        history = with_written(dataset, history, good, written, config, bounds=bounds)
    scoring = _scoring(dataset, done, history, now, config)
    return _Ahead(done, scoring, prepare_upsert(dataset, scoring.frame, stored=scoring.stored), bounds)


def load_frame(
    engine: sa.Engine,
    dataset: str,
    frame: pd.DataFrame,
    *,
    run_id: str | None = None,
    partition_key: str | None = None,
    source: str | None = None,
    batch_rows: int = 50_000,
    now: datetime | None = None,
    score_config: ScoreConfig | None = None,
) -> LoadResult:
    """Validate, quarantine, score and upsert `frame` into `dataset`, one transaction per batch.

    `source` names the origin for quarantine rows and fills the table's `source` column when it has one
    and the frame does not. `now` (default: the wall clock) is the reference of "no future candles" and of
    timeliness — fixed in tests.
    """
    table = table_of(dataset)
    total = LoadResult(dataset)
    if frame.empty:
        return total
    frame = frame.reset_index(drop=True)
    if source is not None and "source" in table.c and "source" not in frame.columns:
        frame = frame.assign(source=source)
    _ensure_rules_synced(engine)
    with engine.connect() as conn:
        rules = load_rules(conn, dataset)
    now = now or clock.now()
    config = score_config or ScoreConfig()
    batches = [frame.iloc[start : start + batch_rows] for start in range(0, len(frame), max(1, batch_rows))]
    # The next batch is scored and prepared when that is exact (`_ahead`) in a worker thread while the
    # current one is written, and the one after it is split in a second worker meanwhile: the server's
    # work and the client's overlap on two cores. The frame's range
    # is locked for the whole call (session locks) so that a history read ahead stays current; each batch
    # is still its own transaction, and errors surface in the batches' order.
    from market_warehouse.resources.warehouse.upsert import hold_range, release_range

    with engine.connect() as conn:
        held = _frame_buckets(dataset, frame) if dataset in SCORED else np.zeros(0, dtype=np.int64)
        hold_range(conn, dataset, held)
        try:
            with (
                ThreadPoolExecutor(max_workers=1, thread_name_prefix="mw-load-split") as splitter,
                ThreadPoolExecutor(max_workers=1, thread_name_prefix="mw-load-ahead") as pool,
            ):
                splits = [splitter.submit(split_frame, dataset, batches[0], rules, now=now)]

                def submit(index: int, previous: _Ahead | None) -> Future[_Ahead]:
                    """Batch `index` ahead; the split of the one after it starts meanwhile."""
                    if index + 1 < len(batches):
                        splits.append(
                            splitter.submit(split_frame, dataset, batches[index + 1], rules, now=now)
                        )
                    return pool.submit(_ahead, engine, dataset, splits[index], now, config, previous, held)

                pending = submit(0, None)
                for index, batch in enumerate(batches):
                    ahead = pending.result()
                    if index + 1 < len(batches):
                        pending = submit(index + 1, ahead)
                    with conn.begin():
                        result, _ = load_batch(
                            conn,
                            dataset,
                            batch,
                            rules,
                            run_id=run_id,
                            partition_key=partition_key,
                            source=source,
                            now=now,
                            score_config=config,
                            split=ahead.split,
                            scoring=ahead.scoring,
                            upsert=ahead.upsert,
                        )
                    total = total + result
        finally:
            if conn.in_transaction():
                conn.rollback()
            release_range(conn, dataset, held)
    if total.quarantined:
        log.warning(
            "%s: %d of %d rows quarantined (%s)",
            dataset,
            total.quarantined,
            total.fetched,
            ", ".join(f"{k}={v}" for k, v in sorted(total.quarantine_reasons.items())),
        )
    return total
