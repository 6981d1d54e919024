"""Screenshots of the Dagster UI on a fresh demo database (issue 12): not part of CI, run by hand.

    python scripts/ui_screenshots.py --out /tmp/mw/shots [--home DIR] [--days 3] [--port 3399]

1. A new `MW_HOME` (a temporary folder unless `--home`): an embedded PostgreSQL of its own, nothing shared
   with the user's warehouse; `DATABASE_URL` is ignored for the same reason. No `MW_HISTORY_START` unless
   `--history-start`: the UI shows what a user sees after the quick start.
2. `market-warehouse demo` fills it (landed files, the synthetic exchanges, derived assets, maintenance) and
   starts the home's history where its window starts, so the partition bars show the demo's days filled.
3. `market-warehouse ui` serves it; a two-day backfill of `ohlcv` is launched through the UI's GraphQL
   (the daemon of `dagster dev` runs it), so the backfill page has something to show.
4. Headless Chromium (Debian's `chromium`: `apt-get install -y chromium`) saves one PNG per page of PAGES.
5. The UI is stopped (Ctrl-C to its process group, as a user would), the folder left for a look.

Each page is rendered with a virtual-time budget, so the UI's queries finish before the picture is taken.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import date, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run as a script from anywhere

from market_warehouse.resources import clock  # noqa: E402

BIN = Path(sys.executable).parent

# (file name, path in the UI, what it shows): taken before the backfill is launched, then after it ended.
LOCATION = "/locations/market_warehouse"
PAGES_BEFORE = [
    ("01_asset_graph.png", "/asset-groups", "the lineage of every asset group"),
    ("02_market_data_graph.png", f"{LOCATION}/asset-groups/market_data", "market data, checks on each node"),
    ("03_derived_graph.png", f"{LOCATION}/asset-groups/derived", "the derived assets and their inputs"),
    (
        "04_ohlcv_asset.png",
        "/assets/ohlcv",
        "ohlcv: owners, kinds, table, column schema, code links, freshness",
    ),
    ("05_ohlcv_checks.png", "/assets/ohlcv?view=checks", "the three load checks of ohlcv"),
    ("06_ohlcv_partitions.png", "/assets/ohlcv?view=partitions", "the daily partitions, the demo's filled"),
    ("07_warehouse_stats.png", "/assets/warehouse_stats?view=events", "one table of every table's size"),
    ("08_equity_curve.png", "/assets/equity_curve?view=events", "equity with drawdown, in the metadata"),
    ("08b_equity_curve_overview.png", "/assets/equity_curve", "equity sparkline in the overview's metadata"),
    ("09_forecast_accuracy.png", "/assets/forecast_accuracy?view=events", "forecasts against actuals"),
    (
        "09b_forecast_overview.png",
        "/assets/forecast_accuracy",
        "forecast sparkline in the overview's metadata",
    ),
    (
        "09c_risk_metrics_overview.png",
        "/assets/risk_metrics",
        "the book's latest risk snapshot in the overview's metadata",
    ),
]
# Pages whose point is below the first screen: an asset overview's Metadata section (with the inline
# sparklines) comes after its column table.
TALL_PAGES = {
    "08b_equity_curve_overview.png": 2600,
    "09b_forecast_overview.png": 2600,
    "09c_risk_metrics_overview.png": 2600,
}
PAGES_AFTER = [
    ("10_backfill.png", "/runs/b/{backfill}", "a two-day backfill of ohlcv, ended"),
    ("11_automation.png", "/automation", "schedules and sensors, with descriptions"),
    ("11b_stale_assets_sensor.png", f"{LOCATION}/sensors/stale_assets_sensor", "the late assets, per tick"),
    ("12_runs.png", "/runs", "the demo's and the backfill's runs"),
    ("13_ohlcv_checks_after.png", "/assets/ohlcv?view=checks", "ohlcv's checks after the backfill"),
]

# The "Join the Dagster community" dialog the UI opens over every page on 127.0.0.1, until dismissed: the
# same mutation as its Skip button, on this throw-away instance.
NUX_SEEN = "mutation { setNuxSeen }"

BACKFILL_STATUS = """
query Status($id: String!) {
  partitionBackfillOrError(backfillId: $id) { ... on PartitionBackfill { status } }
}
"""

BACKFILL = """
mutation Backfill($params: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $params) {
    __typename
    ... on LaunchBackfillSuccess { backfillId }
    ... on PythonError { message }
  }
}
"""


# Set by main() from --history-start only: MW_HISTORY_START for the demo and the UI.
HISTORY_START: dict[str, str] = {}


def _env(home: Path) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DATABASE_URL", "MW_DAGSTER_PG_URL", "DAGSTER_HOME", "MW_HISTORY_START", "MW_UNIVERSE")
    }
    env["MW_HOME"] = str(home)
    env.update(HISTORY_START)
    return env


def run_demo(home: Path, days: int, end: date) -> None:
    """The demo over `days` days ending `end`, in the new MW_HOME (its output on this terminal)."""
    command = [
        str(BIN / "market-warehouse"),
        "demo",
        "--days",
        str(days),
        "--end",
        end.isoformat(),
        "--quiet",
    ]
    subprocess.run(command, env=_env(home), cwd=ROOT, check=True)


def start_ui(home: Path, port: int, log: Path) -> subprocess.Popen:
    """`market-warehouse ui` in a process group of its own (so it can be stopped as a whole)."""
    command = [str(BIN / "market-warehouse"), "ui", "--port", str(port)]
    with log.open("w") as out:
        return subprocess.Popen(
            command, env=_env(home), cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )


def wait_until_serving(port: int, process: subprocess.Popen, log: Path, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the UI exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/server_info", timeout=2) as answer:
                if answer.status == 200:
                    return
        except OSError:
            pass
        time.sleep(2)
    raise SystemExit(f"the UI did not answer within {timeout:.0f} s; see {log}")


def graphql(port: int, query: str, **variables) -> dict:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/graphql",
        data=json.dumps({"query": query, "variables": variables}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=120) as answer:
        body = json.load(answer)
    if body.get("errors"):
        raise SystemExit(f"GraphQL error: {body['errors']}")
    return body["data"]


def launch_backfill(port: int, days: list[str]) -> str:
    params = {"partitionNames": days, "assetSelection": [{"path": ["ohlcv"]}], "fromFailure": False}
    result = graphql(port, BACKFILL, params=params)["launchPartitionBackfill"]
    if result["__typename"] != "LaunchBackfillSuccess":
        raise SystemExit(f"backfill not launched: {result}")
    return result["backfillId"]


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if not found:
        raise SystemExit("Chromium not found: apt-get install -y chromium")
    return found


def screenshot(browser: str, url: str, path: Path, budget_ms: int, height: int = 1000) -> None:
    command = [
        browser,
        "--headless",
        "--no-sandbox",  # root in a container: Chromium refuses its sandbox
        "--disable-gpu",
        "--hide-scrollbars",
        f"--screenshot={path}",
        f"--window-size=1600,{height}",
        f"--virtual-time-budget={budget_ms}",
        url,
    ]
    subprocess.run(command, capture_output=True, timeout=180, check=False)
    if not path.exists():
        raise SystemExit(f"no screenshot of {url}")


def wait_for_backfill(port: int, backfill: str, timeout: float = 900) -> str:
    """The backfill's final status (COMPLETED, FAILED, ...) once the daemon has finished it."""
    deadline = time.monotonic() + timeout
    status = "REQUESTED"
    while time.monotonic() < deadline:
        status = graphql(port, BACKFILL_STATUS, id=backfill)["partitionBackfillOrError"]["status"]
        if status not in ("REQUESTED", "CANCELING"):
            return status
        time.sleep(5)
    return f"{status} after {timeout:.0f} s"


def shoot(browser: str, args: argparse.Namespace, pages: list[tuple[str, str, str]], fill: dict) -> None:
    for name, page, what in pages:
        url = f"http://127.0.0.1:{args.port}{page.format(**fill)}"
        screenshot(browser, url, args.out / name, args.budget_ms, TALL_PAGES.get(name, 1000))
        print(f"{args.out / name}: {what}")


def stop(process: subprocess.Popen) -> None:
    """Ctrl-C to the UI's process group, as from its terminal; killed only if it hangs."""
    os.killpg(process.pid, signal.SIGINT)
    try:
        process.wait(timeout=120)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("/tmp/mw/shots"))
    parser.add_argument("--home", type=Path, help="MW_HOME of the demo (default: a new temporary folder)")
    parser.add_argument("--days", type=int, default=3)
    parser.add_argument("--port", type=int, default=3399)
    parser.add_argument("--budget-ms", type=int, default=20000, help="virtual time each page gets to load")
    parser.add_argument("--skip-demo", action="store_true", help="reuse --home as the demo left it")
    parser.add_argument("--history-start", help="MW_HISTORY_START (default: none, the demo's own start)")
    args = parser.parse_args()

    browser = chromium()
    home = args.home or Path(tempfile.mkdtemp(prefix="mw-ui-shots-"))
    args.out.mkdir(parents=True, exist_ok=True)
    end = clock.today() - timedelta(days=1)  # the demo's default window: the days before today
    if args.history_start:
        HISTORY_START["MW_HISTORY_START"] = args.history_start
    if not args.skip_demo:
        run_demo(home, args.days, end)
    log = args.out / "ui.log"
    process = start_ui(home, args.port, log)
    try:
        wait_until_serving(args.port, process, log)
        graphql(args.port, NUX_SEEN)
        shoot(browser, args, PAGES_BEFORE, {})
        backfill = launch_backfill(args.port, [(end - timedelta(days=d)).isoformat() for d in (1, 0)])
        print(f"backfill {backfill}: {wait_for_backfill(args.port, backfill)}")
        shoot(browser, args, PAGES_AFTER, {"backfill": backfill})
    finally:
        stop(process)
    print(f"demo home: {home} (delete it when done)")


if __name__ == "__main__":
    main()
