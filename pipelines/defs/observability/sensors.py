"""The stale-assets sensor: which assets are late by their freshness policy (pipelines/catalog.py).

Dagster's freshness daemon shows each asset's state on its page; this sensor puts the whole list in one
place (the sensor's tick history on the Automation page, and a WARNING in the daemon's log) and is the hook
for alerts: a deployment that wants Slack or e-mail adds a run-failure sensor (README "Dagster") or
replaces `report` with its notifier. The verdict follows Dagster's own rules (time window: age against
the fail / warn windows; cron: a materialization since the last deadline's lower bound) on the project's
clock, so a test can pin the time.
"""

from datetime import datetime

import dagster as dg
from dagster._core.definitions.freshness import CronFreshnessPolicy, TimeWindowFreshnessPolicy
from dagster._utils.schedules import get_latest_completed_cron_tick

from market_warehouse.resources import clock

PASS, WARN, FAIL, UNKNOWN = "PASS", "WARN", "FAIL", "UNKNOWN"


def freshness_state(policy: dg.FreshnessPolicy, last: datetime | None, now: datetime) -> str:
    """PASS / WARN / FAIL of an asset last materialized at `last` (UNKNOWN: never materialized)."""
    if last is None:
        return UNKNOWN
    if isinstance(policy, TimeWindowFreshnessPolicy):
        age = now - last
        if age >= policy.fail_window.to_timedelta():
            return FAIL
        warn = policy.warn_window
        return WARN if warn is not None and age >= warn.to_timedelta() else PASS
    if isinstance(policy, CronFreshnessPolicy):
        deadline = get_latest_completed_cron_tick(policy.deadline_cron, now, policy.timezone)
        return PASS if last >= deadline - policy.lower_bound_delta else FAIL
    raise TypeError(f"freshness policy of unknown kind: {type(policy).__name__}")


def freshness_report(context: dg.SensorEvaluationContext, now: datetime) -> dict[str, tuple[str, str]]:
    """asset -> (state, last materialization in UTC or 'never') of every asset with a freshness policy."""
    report = {}
    for node in context.repository_def.asset_graph.asset_nodes:
        policy = node.freshness_policy
        if policy is None:
            continue
        event = context.instance.get_latest_materialization_event(node.key)
        last = datetime.fromtimestamp(event.timestamp, now.tzinfo) if event else None
        when = f"{last:%Y-%m-%d %H:%M} UTC" if last else "never"
        report[node.key.to_user_string()] = (freshness_state(policy, last, now), when)
    return report


def summary(report: dict[str, tuple[str, str]]) -> str:
    """One line: the late assets with their last materialization, then how many are fresh or unknown."""
    late = [
        f"{asset} {state} (last {when})"
        for asset, (state, when) in sorted(report.items())
        if state in (FAIL, WARN)
    ]
    fresh = sum(1 for state, _ in report.values() if state == PASS)
    never = sum(1 for state, _ in report.values() if state == UNKNOWN)
    head = f"late: {'; '.join(late)}" if late else "no asset late"
    return f"{head} — {fresh} fresh, {never} never materialized, of {len(report)} with a freshness policy"


@dg.sensor(
    name="stale_assets_sensor",
    minimum_interval_seconds=300,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Every 5 minutes: the assets late by their freshness policy (due after their schedule's "
    "tick plus a settle time), listed in the tick's reason and logged as a warning. Launches no run.",
)
def stale_assets_sensor(context: dg.SensorEvaluationContext) -> dg.SkipReason:
    report = freshness_report(context, clock.now())
    line = summary(report)
    # Logged as well as returned: the tick's "View logs" shows the line (the tick list shows "0 runs requested").
    late = any(state in (FAIL, WARN) for state, _ in report.values())
    (context.log.warning if late else context.log.info)(line)
    return dg.SkipReason(line)
