"""Gap report per (exchange, symbol, interval) of the universe, calendar-aware, as data and as markdown.

A gap is a run of candles the market's calendar expects, that are not stored, and whose range was never
asked and answered (see `coverage.py`). Weekends and holidays of an equity calendar are not gaps; an
exchange's answered-empty period is counted separately (`answered_empty`) and is not a gap either.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import pandas as pd
import sqlalchemy as sa

from market_warehouse.resources import clock
from market_warehouse.resources.exchanges.calendars import floor_time, utc
from market_warehouse.resources.exchanges.coverage import CandleGaps, FundingGaps, candle_gaps, funding_gaps
from market_warehouse.resources.exchanges.universe import Universe
from market_warehouse.resources.intervals import interval_to_timedelta


@dataclass(frozen=True)
class GapReport:
    start: pd.Timestamp
    end: pd.Timestamp
    series: tuple[CandleGaps, ...]
    funding: tuple[FundingGaps, ...] = ()  # by each perpetual's observed funding schedule

    @property
    def funding_missing(self) -> int:
        return sum(f.missing for f in self.funding)

    @property
    def missing(self) -> int:
        return sum(s.missing for s in self.series)

    @property
    def gap_count(self) -> int:
        return sum(len(s.ranges) for s in self.series)

    def markdown(self, max_rows: int = 50) -> str:
        """Per series one line, then the gaps themselves (the first `max_rows`)."""
        lines = [
            f"Window {self.start.isoformat()} to {self.end.isoformat()}: "
            f"{self.gap_count} gaps, {self.missing} missing candles.",
            "",
            "| exchange | symbol | interval | price | calendar | expected | stored | answered empty | missing "
            "| gaps |",
            "|---|---|---|---|---|---:|---:|---:|---:|---:|",
        ]
        for s in self.series:
            lines.append(
                f"| {s.exchange} | {s.symbol} | {s.interval} | {s.price} | {s.calendar} | {s.expected} "
                f"| {s.stored} "
                f"| {s.answered_empty} | {s.missing} | {len(s.ranges)} |"
            )
        gaps = [(s, lo, hi, n) for s in self.series for lo, hi, n in s.ranges]
        if gaps:
            lines += [
                "",
                "| exchange | symbol | interval | from | to | candles |",
                "|---|---|---|---|---|---:|",
            ]
            for s, lo, hi, n in gaps[:max_rows]:
                lines.append(
                    f"| {s.exchange} | {s.symbol} | {s.interval} | {lo.isoformat()} | {hi.isoformat()} | {n} |"
                )
            if len(gaps) > max_rows:
                lines.append(f"| … | | | | | {len(gaps) - max_rows} more gaps |")
        if self.funding:
            lines += [
                "",
                f"Funding (observed schedules): {self.funding_missing} missing events.",
                "",
                "| exchange | symbol | stored | missing | after | before | events |",
                "|---|---|---:|---:|---|---|---:|",
            ]
            for f in self.funding:
                first = f.ranges[0] if f.ranges else ("", "", "")
                lines.append(
                    f"| {f.exchange} | {f.symbol} | {f.stored} | {f.missing} | {_iso(first[0])} "
                    f"| {_iso(first[1])} | {first[2]} |"
                )
        return "\n".join(lines)


def gap_report(
    engine: sa.Engine,
    universe: Universe,
    start: datetime,
    end: datetime,
    *,
    now: datetime | None = None,
    exchanges: set[str] | None = None,
) -> GapReport:
    """Gaps of every candle series in `[start, end)`; candles not closed and settled by `now` are not due."""
    now_ts = utc(now if now is not None else clock.now())
    start_ts, end_ts = utc(start), utc(end)
    found, funding = [], []
    with engine.connect() as conn:
        for config, symbol, interval in universe.series():
            if exchanges and config.name not in exchanges:
                continue
            due = floor_time(now_ts - pd.Timedelta(interval_to_timedelta(config.settle)), interval)
            series_end = max(start_ts, min(end_ts, due))
            found.extend(
                candle_gaps(conn, config.name, symbol, interval, config.calendar, start_ts, series_end, price)
                for price in config.prices_of(symbol)
            )
        for config in universe.exchanges:
            if exchanges and config.name not in exchanges:
                continue
            settled = max(start_ts, min(end_ts, now_ts - pd.Timedelta(interval_to_timedelta(config.settle))))
            funding.extend(
                funding_gaps(conn, config.name, m.symbol, start_ts, settled)
                for m in config.metrics
                if m.metric == "funding_rate"
            )
    return GapReport(start_ts, end_ts, tuple(found), tuple(funding))


def _iso(value: object) -> str:
    return value.isoformat() if isinstance(value, pd.Timestamp) else ""


def lookback_window(days: int, now: datetime | None = None) -> tuple[pd.Timestamp, pd.Timestamp]:
    """The last `days` whole UTC days plus today so far."""
    now_ts = utc(now if now is not None else clock.now())
    end = now_ts
    return floor_time(now_ts, "1d") - pd.Timedelta(timedelta(days=days)), end
