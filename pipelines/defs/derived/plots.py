"""Plots of the derived assets' metadata: PNGs (matplotlib, Agg) embedded as base64 in markdown, which the
Dagster UI renders. matplotlib is imported on first use: loading the code location does not pay for it."""

import base64
import io

import dagster as dg
import pandas as pd
import sqlalchemy as sa

from market_warehouse.pipelines.defs.derived import queries
from market_warehouse.resources.intervals import interval_to_timedelta


def _figure():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt.subplots(figsize=(7, 3))


def _png_markdown(fig, alt: str) -> dg.MetadataValue:
    fig.autofmt_xdate()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=80, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    encoded = base64.b64encode(buffer.getvalue()).decode()
    return dg.MetadataValue.md(f"![{alt}](data:image/png;base64,{encoded})")


def _forecast_data(engine: sa.Engine, scores: pd.DataFrame):
    """The last scored run, its forecasts, the actual closes around them and the candle step."""
    with engine.connect() as conn:
        run = queries.forecast_run(conn, int(scores.iloc[-1]["model_id"]))
        frame = queries.run_forecasts(conn, run)
        step = interval_to_timedelta(run.interval)
        last = frame["target_time"].max()
        history = queries.close_history(conn, run, run.generated_at - (last - run.generated_at) - step, last)
    return run, frame, history, step


def forecast_plot(engine: sa.Engine, scores: pd.DataFrame) -> dg.MetadataValue:
    """The forecasts of the last scored run's series and training end, against the actual closes
    (plotted at their close times, as target times are)."""
    run, frame, history, step = _forecast_data(engine, scores)
    fig, ax = _figure()
    ax.plot(history["time"] + step, history["close"], color="black", linewidth=1.2, label="actual close")
    for kind, group in frame.groupby("kind"):
        ax.plot(group["target_time"], group["point"], linewidth=1, label=kind)
        ax.fill_between(group["target_time"], group["lower_95"], group["upper_95"], alpha=0.12)
    ax.axvline(run.generated_at, color="grey", linestyle=":", linewidth=1)
    ax.set_title(
        f"{run.exchange} {run.symbol} {run.interval}: forecasts from {run.generated_at:%Y-%m-%d %H:%M} UTC"
    )
    ax.legend(fontsize=7)
    return _png_markdown(fig, "forecasts vs actuals")


def equity_plot(name: str, returns: pd.Series) -> dg.MetadataValue:
    """The book's time-weighted return (%, `risk.cumulative_returns`) with its drawdown from the running
    peak shaded.

    The return, not the equity: the book's capital is that of the series it trades so far, so its equity
    jumps when a series joins (e.g. the NYSE's on the first session after a weekend), which is a deposit,
    not a gain; the time-weighted return, net of that deposit, does not (and risk_metrics measures the same).
    """
    fig, ax = _figure()
    growth = 1 + returns.astype(float)
    ax.plot(growth.index, (growth.to_numpy() - 1) * 100, color="tab:blue", linewidth=1.2)
    ax.fill_between(
        growth.index,
        (growth.cummax().to_numpy() - 1) * 100,
        (growth.to_numpy() - 1) * 100,
        color="tab:red",
        alpha=0.2,
        label="drawdown",
    )
    ax.set_title(f"time-weighted return of {name} (%)")
    ax.legend(fontsize=7)
    return _png_markdown(fig, f"time-weighted return of {name}")


# Dagster 1.13's UI renders a markdown metadata value inline in the metadata table only when it is shorter than
# 1,000 characters; a longer one (any PNG) waits behind "[Show Markdown]". A small SVG of a few dozen points
# fits, so the shape of the curve is seen on the asset page without a click; the PNG stays for the detail.
INLINE_MARKDOWN_LIMIT = 1000
_SPARK_W, _SPARK_H = 240, 60


def _spark_points(series: pd.Series, x0: float, x1: float, y0: float, y1: float, n: int) -> list[str]:
    """`series` (numeric index: time as seconds) downsampled to `n` points on the sparkline's grid."""
    picked = series.iloc[sorted({round(i * (len(series) - 1) / max(n - 1, 1)) for i in range(n)})]
    xs = (picked.index.to_numpy(dtype=float) - x0) / ((x1 - x0) or 1) * _SPARK_W
    ys = _SPARK_H - (picked.to_numpy(dtype=float) - y0) / ((y1 - y0) or 1) * _SPARK_H
    return [f"{x:.0f},{y:.0f}" for x, y in zip(xs, ys, strict=True)]


def _svg_markdown(shapes: list[str], alt: str) -> dg.MetadataValue:
    svg = (
        f"<svg xmlns='http://www.w3.org/2000/svg' viewBox='-2 -2 {_SPARK_W + 4} {_SPARK_H + 4}' "
        f"width='{_SPARK_W * 2}' height='{_SPARK_H * 2}'>{''.join(shapes)}</svg>"
    )
    return dg.MetadataValue.md(
        f"![{alt}](data:image/svg+xml;base64,{base64.b64encode(svg.encode()).decode()})"
    )


def sparkline(lines: dict[str, pd.Series], alt: str, fill: tuple[pd.Series, pd.Series] | None = None):
    """Polylines (colour -> series indexed by time) on one scale, `fill` shaded between two series; as few
    points as keep the markdown under INLINE_MARKDOWN_LIMIT (None if even 8 points do not)."""
    series = [s.dropna() for s in [*lines.values(), *(fill or ())]]
    series = [pd.Series(s.to_numpy(dtype=float), index=pd.DatetimeIndex(s.index).asi8 / 1e9) for s in series]
    if not all(len(s) for s in series):
        return None
    x0, x1 = min(s.index.min() for s in series), max(s.index.max() for s in series)
    y0, y1 = min(s.min() for s in series), max(s.max() for s in series)
    for n in (32, 24, 16, 8):
        scaled = [_spark_points(s, x0, x1, y0, y1, n) for s in series]
        shapes = [
            f"<polyline points='{','.join(p)}' fill='none' stroke='{c}' stroke-width='1.5'/>"
            for c, p in zip(lines, scaled, strict=False)
        ]
        if fill:
            upper, lower = scaled[len(lines)], scaled[len(lines) + 1]
            shapes.insert(
                0, f"<polygon points='{','.join(upper + lower[::-1])}' fill='red' fill-opacity='.25'/>"
            )
        value = _svg_markdown(shapes, alt)
        if len(value.value) < INLINE_MARKDOWN_LIMIT:
            return value
    return None


def equity_sparkline(returns: pd.Series) -> dg.MetadataValue | None:
    """The book's growth of one unit of capital (blue, `1 + return`; see `equity_plot` for why not the
    equity) with its drawdown from the running peak shaded red, small enough to show inline."""
    growth = 1 + returns.astype(float)
    return sparkline({"blue": growth}, "time-weighted return and drawdown", fill=(growth.cummax(), growth))


_KIND_COLOURS = ("orange", "green", "purple", "teal")


def forecast_sparkline(engine: sa.Engine, scores: pd.DataFrame) -> dg.MetadataValue | None:
    """The last scored run's point forecasts (one colour per model) against the actual closes (black),
    small enough to show inline."""
    _run, frame, history, step = _forecast_data(engine, scores)
    lines = {"black": pd.Series(history["close"].to_numpy(), index=history["time"] + step)}
    for colour, (_kind, group) in zip(_KIND_COLOURS, frame.groupby("kind"), strict=False):
        lines[colour] = pd.Series(group["point"].to_numpy(), index=group["target_time"])
    return sparkline(lines, "forecasts vs actuals")
