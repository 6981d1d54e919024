"""The reference strategy's book as the derived assets see it: the series it trades, their replays from
inception, and the portfolios (the whole book and one sleeve per series) that equity and risk measure."""

from datetime import datetime

import sqlalchemy as sa

from market_warehouse.pipelines.defs.derived.resources import AnalyticsResource
from market_warehouse.resources.analytics import backtest, features, risk, strategy
from market_warehouse.resources.analytics.backtest import Series
from market_warehouse.resources.intervals import interval_to_timedelta


def strategy_series(conn: sa.Connection, analytics: AnalyticsResource, end: datetime) -> list[Series]:
    """Series the book trades: those of the strategy's intervals with candles since inception."""
    found = features.series_in_window(conn, analytics.inception(), end)
    return [Series(*s) for s in found if s[2] in analytics.strategy_intervals]


def replays(conn: sa.Connection, analytics: AnalyticsResource, end: datetime) -> dict[Series, tuple]:
    """The strategy replayed from inception to `end` for every series: {series: (candles, simulation)}."""
    p = analytics.strategy_params()
    out = {}
    for s in strategy_series(conn, analytics, end):
        candles = features.read_candles(conn, (s.exchange, s.symbol, s.interval), analytics.inception(), end)
        sim = strategy.simulate(candles, interval_to_timedelta(s.interval), p, s.book_id(p))
        if backtest.is_perpetual(s.symbol):  # a perpetual held through funding times pays or earns it
            sim = backtest.with_funding(
                sim, backtest.read_funding(conn, s.exchange, s.symbol, analytics.inception(), end)
            )
        out[s] = (candles, sim)
    return out


def portfolios(conn: sa.Connection, analytics: AnalyticsResource, end: datetime) -> list[risk.Portfolio]:
    """The whole book (capital = per-series capital x series), then one sleeve per series traded."""
    series = strategy_series(conn, analytics, end)
    p = analytics.strategy_params()
    capital = strategy.money(p.initial_capital)
    sleeves = [
        risk.Portfolio(s.book_id(p), p.name, capital, (s,), correlation_prefix=s.book_id(p) + ":")
        for s in series
    ]
    book = [risk.Portfolio(p.name, p.name, capital * len(series), tuple(series))] if series else []
    return book + sleeves


def perf_row(perf: backtest.Performance) -> dict:
    """One backtest's headline numbers, rounded for the metadata table."""
    return {
        "final_equity": float(perf.final_equity),
        "total_return": round(perf.total_return, 6),
        "sharpe": None if perf.sharpe_ratio is None else round(perf.sharpe_ratio, 3),
        "max_drawdown": round(perf.max_drawdown, 4),
        "trades": perf.trades,
        "win_rate": perf.win_rate,
        "fees": float(perf.fees_paid),
    }
