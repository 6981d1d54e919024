"""Plots of the derived assets' metadata: PNGs (matplotlib, Agg) embedded as base64 in markdown, which the
Dagster UI renders. matplotlib is imported on first use: loading the code location does not pay for it."""

import base64
import io

import dagster as dg
import pandas as pd
import sqlalchemy as sa

from pipelines.defs.derived import queries
from resources.intervals import interval_to_timedelta


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


def forecast_plot(engine: sa.Engine, scores: pd.DataFrame) -> dg.MetadataValue:
    """The forecasts of the last scored run's series and training end, against the actual closes
    (plotted at their close times, as target times are)."""
    with engine.connect() as conn:
        run = queries.forecast_run(conn, int(scores.iloc[-1]["model_id"]))
        frame = queries.run_forecasts(conn, run)
        step = interval_to_timedelta(run.interval)
        last = frame["target_time"].max()
        history = queries.close_history(conn, run, run.generated_at - (last - run.generated_at) - step, last)
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


def equity_plot(name: str, equity: pd.Series) -> dg.MetadataValue:
    """The book's equity with its drawdown from the running peak shaded."""
    fig, ax = _figure()
    values = equity.astype(float)
    ax.plot(values.index, values.to_numpy(), color="tab:blue", linewidth=1.2)
    ax.fill_between(
        values.index,
        values.cummax().to_numpy(),
        values.to_numpy(),
        color="tab:red",
        alpha=0.2,
        label="drawdown",
    )
    ax.set_title(f"equity of {name}")
    ax.legend(fontsize=7)
    return _png_markdown(fig, f"equity curve of {name}")
