"""What the derived assets' metadata shows in the UI (issue 12, points 2 and 7), checked where the demo's
screenshots showed something untrue.

The equity plots of `equity_curve`'s metadata show the book's time-weighted return (issue 12, point 7):
the book's capital is that of the series it trades so far, so its equity jumps by a series' capital when one
joins (the demo's NYSE series on the first session after a weekend: 19,905 -> 29,906 in the UI's picture,
a "gain" of 50 % that was a deposit). The return, net of deposits, does not jump; the drawdown is measured
on it, as `risk_metrics` measures it."""

from __future__ import annotations

import base64
import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pandas as pd
import pytest
import sqlalchemy as sa

from market_warehouse.pipelines.defs.derived import plots
from market_warehouse.resources.analytics import accuracy, risk

START = datetime(2026, 11, 28, tzinfo=UTC)
# Two days of a two-series book (capital 20,000) losing 0.5 %, then a third series joins (capital 30,000)
# and the book recovers to -0.25 %.
ROWS = [(START + timedelta(hours=h), 20_000 * (1 - 0.005 * h / 47), -0.005 * h / 47) for h in range(48)] + [
    (START + timedelta(hours=48 + h), 29_880 + 2 * h, (29_880 + 2 * h) / 30_000 - 1) for h in range(24)
]


def _points(markdown: str) -> list[tuple[float, float]]:
    svg = base64.b64decode(markdown[markdown.index("base64,") + 7 : markdown.rindex(")")]).decode()
    line = re.search(r"<polyline points='([^']+)'", svg).group(1).split(",")
    return [(float(x), float(y)) for x, y in zip(line[::2], line[1::2], strict=True)]


def test_a_series_joining_the_book_is_not_a_gain_in_the_plot(engine):
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO equity_curve (portfolio, time, equity, total_return) VALUES (:p, :t, :e, :r)"
            ),
            [{"p": "book", "t": t, "e": e, "r": r} for t, e, r in ROWS],
        )
        conn.execute(  # another portfolio and a row at the end are not read
            sa.text("INSERT INTO equity_curve (portfolio, time, equity, total_return) VALUES (:p, :t, 1, 9)"),
            [{"p": "other", "t": START}, {"p": "book", "t": START + timedelta(days=3)}],
        )
        equity = risk.read_equity(conn, "book", START + timedelta(days=3))
    returns = risk.cumulative_returns(equity, Decimal(30_000))
    assert len(returns) == len(ROWS) and returns.index[0] == START
    # -0.5 % on 20,000; the hour the third series joins its 10,000 is a deposit, not a return; then +46 on 29,880
    assert returns.iloc[-1] == pytest.approx(0.995 * (19_880 / 19_900) * (29_926 / 29_880) - 1, rel=1e-9)

    points = _points(plots.equity_sparkline(returns).value)
    start_y, lowest_y, end_y = points[0][1], max(y for _, y in points), points[-1][1]
    # SVG y grows downwards: the book ends below where it started (it lost), never at the top of the plot
    # (where the equity's jump put it), and its low is the weekend's end.
    assert start_y < end_y < lowest_y
    assert min(y for _, y in points) == start_y  # the peak is the start: no gain at any time


def test_accuracy_by_kind_counts_the_forecasts_scored():
    """`n` of forecast_accuracy's table is the forecasts scored per model kind: the demo showed the mean of
    its runs' counts (`23.3333`) under a column read as a count. A run scored on two days (run 1: 10 targets
    known on the first, 24 on the second) counts once, with its last score: 24 + 24 + 22, as its rows."""
    scores = pd.DataFrame(
        {
            "model_id": [1, 1, 2, 3, 4],
            "kind": ["ets", "ets", "ets", "ets", "naive"],
            "n": [10, 24, 24, 22, 24],
            "mae": [9.0, 1.0, 2.0, 3.0, 4.0],
            "skill": [0.9, 0.1, 0.2, None, 0.0],
        }
    )
    table = accuracy.summary_by_kind(scores).set_index("kind")
    assert table.loc["ets", "n"] == 70 and table.loc["naive", "n"] == 24
    assert table.loc["ets", "mae"] == 2.0 and abs(table.loc["ets", "skill"] - 0.15) < 1e-12  # means
