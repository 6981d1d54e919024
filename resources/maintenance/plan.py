"""What the next `nightly_maintenance` would do, computed without changing anything.

Partitions it would create, aggregate windows it would refresh, chunks it would compress and pieces it
would drop (table, range, rows, bytes), each from the same selection functions the steps use, so the plan
and the run cannot disagree on what is selected. Every query runs in one READ ONLY transaction, which is
rolled back: PostgreSQL itself refuses any write there, whatever a future change to a planner does.

`market-warehouse maintenance plan` prints it; the nightly job's first step attaches it as metadata.

Rows to drop are exact counts (what retention records when it drops them); bytes are the pieces' sizes
now — compression, which runs before retention in the same night, can make them smaller by then.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from market_warehouse.resources import clock
from market_warehouse.resources.backend import Capabilities, detect
from market_warehouse.resources.maintenance.aggregates import RefreshResult, plan_refresh
from market_warehouse.resources.maintenance.compression import CompressionPlan, plan_compression
from market_warehouse.resources.maintenance.partitions import PlannedPartition, plan_partitions
from market_warehouse.resources.maintenance.policy import MaintenancePolicy
from market_warehouse.resources.maintenance.retention import (
    DROPPED,
    ROWS_DELETED,
    PieceAction,
    plan_retention,
)
from market_warehouse.resources.maintenance.stats import human_bytes
from market_warehouse.resources.sqlfiles import sql_text

SHOWN = 20  # entries per section in the text and markdown forms; the JSON form lists all


@contextmanager
def read_only(engine: sa.Engine) -> Iterator[sa.Connection]:
    """A connection inside a READ ONLY transaction that is always rolled back: a write there fails."""
    with engine.connect() as conn:
        conn.execute(sql_text("common/read_only_transaction"))
        try:
            yield conn
        finally:
            conn.rollback()


@dataclass
class MaintenancePlan:
    now: datetime
    backend: str
    policy: dict[str, str]
    partitions: list[PlannedPartition]
    native_partitions: bool
    refresh: RefreshResult
    compression: CompressionPlan
    drops: list[PieceAction]
    retention_configured: bool

    @property
    def removed_rows(self) -> int:
        return sum(d.rows or 0 for d in self.drops)

    @property
    def dropped_bytes(self) -> int:
        return sum(d.bytes or 0 for d in self.drops if d.action == DROPPED)

    def summary(self) -> dict[str, int]:
        """Counts per step, for metadata and the first lines of the text form."""
        return {
            "partitions_to_create": len(self.partitions),
            "dirty_hours_to_refresh": self.refresh.dirty_hours,
            "chunks_to_compress": len(self.compression.chunks),
            "pieces_to_drop": sum(1 for d in self.drops if d.action == DROPPED),
            "pieces_to_trim": sum(1 for d in self.drops if d.action == ROWS_DELETED),
            "rows_to_remove": self.removed_rows,
            "bytes_to_drop": self.dropped_bytes,
        }

    def as_dict(self) -> dict[str, object]:
        """Complete, JSON-ready (`maintenance plan --json`)."""
        return {
            "now": self.now.isoformat(),
            "backend": self.backend,
            "policy": self.policy,
            "summary": self.summary(),
            "create_partitions": [p.record() for p in self.partitions],
            "refresh_aggregates": {
                "mode": self.refresh.mode,
                "dirty_hours": self.refresh.dirty_hours,
                "hour_windows": [_window(w) for w in self.refresh.hour_windows],
                "day_windows": [_window(w) for w in self.refresh.day_windows],
            },
            "compress_chunks": {
                "status": self.compression.status,
                "cutoff": self.compression.cutoff.isoformat() if self.compression.cutoff else None,
                "chunks": [c.record() for c in self.compression.chunks],
                "tables_without_settings": self.compression.not_configured,
            },
            "apply_retention": [d.record() for d in self.drops],
        }

    def text(self) -> str:
        """For people: one section per step, in the order the nightly job runs them."""
        out = [
            f"nightly_maintenance plan at {self.now.isoformat(timespec='seconds')} (backend {self.backend}): "
            "nothing was changed",
            self._policy_line(),
            "",
        ]
        if not self.native_partitions:
            out.append("1. create partitions: none (TimescaleDB creates chunks on insert)")
        else:
            out.append(f"1. create partitions: {len(self.partitions)}")
            out += _aligned(
                ("table", "partition", "from", "to", "rows from DEFAULT"),
                [
                    (p.table, p.name, _ts(p.start), _ts(p.end), f"{p.rows_from_default:,}")
                    for p in self.partitions
                ],
            )
        r = self.refresh
        out.append(
            f"2. refresh aggregates ({r.mode}): {_count(r.dirty_hours, 'dirty hour')} in "
            f"{_count(len(r.hour_windows), 'hour window')} and {_count(len(r.day_windows), 'day window')}"
        )
        if r.hour_windows:
            out.append(f"   from {_ts(r.hour_windows[0][0])} to {_ts(r.hour_windows[-1][1])}")
        c = self.compression
        if c.cutoff is None:
            out.append(f"3. compress chunks: {c.status}")
        else:
            out.append(f"3. compress chunks ending before {_ts(c.cutoff)}: {len(c.chunks)}")
            out += _aligned(
                ("table", "chunk", "from", "to", "size"),
                [(x.table, x.piece, _ts(x.start), _ts(x.end), _size(x.bytes)) for x in c.chunks],
            )
            if c.not_configured:
                out.append(f"   no columnstore settings (run migrate): {', '.join(c.not_configured)}")
        out.append(self._retention_headline())
        out += _aligned(
            ("table", "piece", "action", "intervals", "from", "to", "rows", "size"),
            [
                (
                    d.table,
                    d.piece,
                    d.label,
                    ", ".join(d.intervals) or "all",
                    _ts(d.start),
                    _ts(d.end),
                    f"{d.rows:,}",
                    _size(d.bytes),
                )
                for d in self.drops
            ],
        )
        return "\n".join(out)

    def _policy_line(self) -> str:
        cold = {k: v for k, v in self.policy.items() if k == "cold" or k.startswith("cold[")}
        rules = {k: v for k, v in self.policy.items() if k not in ("compress_after", "retention", *cold)}
        kept = ", ".join(f"{k} {v}" for k, v in rules.items()) or "none (everything is kept)"
        line = f"policy: retention {kept}; compression after {self.policy['compress_after']}"
        return line + "".join(f"; {k} {v}" for k, v in cold.items())

    def _retention_headline(self) -> str:
        if not self.retention_configured:
            return "4. apply retention: nothing (no retention configured: everything is kept)"
        s = self.summary()
        return (
            f"4. apply retention: drop {_count(s['pieces_to_drop'], 'piece')} "
            f"({human_bytes(s['bytes_to_drop'])}), delete rows in {_count(s['pieces_to_trim'], 'piece')}: "
            f"{_count(s['rows_to_remove'], 'row')} in all"
        )

    def markdown(self) -> str:
        """For Dagster metadata: the text form in a code block keeps its columns aligned."""
        return f"```\n{self.text()}\n```"


def plan_maintenance(
    engine: sa.Engine,
    policy: MaintenancePolicy,
    now: datetime | None = None,
    caps: Capabilities | None = None,
) -> MaintenancePlan:
    """The plan of a `nightly_maintenance` run at `now` (default: the clock), in a read-only transaction."""
    now = now or clock.now()
    with read_only(engine) as conn:
        caps = caps or detect(conn)
        created = plan_partitions(conn, caps, now)
        return MaintenancePlan(
            now=now,
            backend=caps.backend.value,
            policy=policy.describe(),
            partitions=created,
            native_partitions=caps.native_partitions,
            refresh=plan_refresh(conn, caps),
            compression=plan_compression(conn, caps, policy, now),
            drops=plan_retention(conn, caps, policy, now, [p.piece() for p in created]),
            retention_configured=bool(policy.retention),
        )


def _aligned(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """Indented, column-aligned lines; the first `SHOWN` rows, then how many more there are."""
    if not rows:
        return []
    shown = list(rows[:SHOWN])
    widths = [max(len(str(v)) for v in column) for column in zip(headers, *shown, strict=True)]
    lines = [
        "   " + "  ".join(f"{v:<{w}}" for v, w in zip(row, widths, strict=True)).rstrip()
        for row in [headers, *shown]
    ]
    if len(rows) > SHOWN:
        lines.append(f"   … and {len(rows) - SHOWN} more (--json lists all)")
    return lines


def _count(n: int, noun: str) -> str:
    return f"{n:,} {noun}" + ("" if n == 1 else "s")


def _window(window: tuple[datetime, datetime]) -> list[str]:
    return [window[0].isoformat(), window[1].isoformat()]


def _ts(value: datetime) -> str:
    return value.strftime("%Y-%m-%d %H:%M")


def _size(n: int | None) -> str:
    return "" if n is None else human_bytes(n)
