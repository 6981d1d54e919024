"""GX 1.x suites built from the same `Rule` definitions as the row-level split, for suite-level reports.

The row-level split (`split.py`) decides what is stored; this module reports on what WAS stored (or on any
frame) through Great Expectations, so the asset checks show GX's standard statistics and failed
expectations. Kinds with a native expectation use it (not_null, range, regex, pair, unique_key); kinds GX
has no expectation for (aligned_to_interval, not_future, spacing, custom) are evaluated by the split's own
vectorized code into a boolean column `rule__<name>` that a native `ExpectColumnValuesToBeInSet([True])`
then checks — one definition of each rule, two reporters.

GX is imported lazily (its import takes seconds), in an ephemeral context, with progress bars, analytics
and its INFO logging off.
"""

from __future__ import annotations

import functools
import logging
import os
import time
from datetime import datetime
from typing import Any

import pandas as pd

from market_warehouse.resources import clock
from market_warehouse.resources.quality.jsonsafe import records
from market_warehouse.resources.quality.rules import Rule
from market_warehouse.resources.quality.split import evaluate

# GX would otherwise try to send usage statistics (no network here, and none wanted): off before any import.
os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")

DERIVED_PREFIX = "rule__"
SAMPLE_ROWS = 5


@functools.cache
def _context():
    """One ephemeral GX context per process (no files, no network, no progress bars)."""
    for name in ("great_expectations", "great_expectations.core", "great_expectations.data_context"):
        logging.getLogger(name).setLevel(logging.ERROR)
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
    context.data_sources.add_pandas("market_warehouse")
    return context


def _batch(dataset: str, frame: pd.DataFrame):
    datasource = _context().data_sources.get("market_warehouse")
    try:
        asset = datasource.get_asset(dataset)
    except LookupError:
        asset = datasource.add_dataframe_asset(dataset)
    try:
        definition = asset.get_batch_definition("whole")
    except (KeyError, LookupError):
        definition = asset.add_batch_definition_whole_dataframe("whole")
    return definition.get_batch(batch_parameters={"dataframe": frame})


def _native(rule: Rule, frame: pd.DataFrame):
    """The GX expectation of a rule with a native equivalent, or None."""
    import great_expectations.expectations as gxe

    p = rule.params
    if rule.kind == "not_null":
        return gxe.ExpectColumnValuesToNotBeNull(column=rule.column)
    if rule.kind == "range":
        return gxe.ExpectColumnValuesToBeBetween(
            column=rule.column,
            min_value=p.get("min"),
            max_value=p.get("max"),
            strict_min=bool(p.get("min_exclusive")),
            strict_max=bool(p.get("max_exclusive")),
        )
    if rule.kind == "regex":
        return gxe.ExpectColumnValuesToMatchRegex(column=rule.column, regex=p["regex"])
    if rule.kind == "pair" and p["op"] in {">", ">=", "<", "<="}:
        a, b = (rule.column, p["other"]) if p["op"].startswith(">") else (p["other"], rule.column)
        return gxe.ExpectColumnPairValuesAToBeGreaterThanB(
            column_A=a, column_B=b, or_equal=p["op"].endswith("="), ignore_row_if="either_value_is_missing"
        )
    if rule.kind == "pair" and p["op"] == "==":
        return gxe.ExpectColumnPairValuesToBeEqual(
            column_A=rule.column, column_B=p["other"], ignore_row_if="either_value_is_missing"
        )
    if rule.kind == "unique_key":
        columns = [c for c in p.get("columns", []) if c in frame]
        if len(columns) == 1:
            return gxe.ExpectColumnValuesToBeUnique(column=columns[0])
        return gxe.ExpectCompoundColumnsToBeUnique(column_list=columns) if columns else None
    return None


def _columns_of(rule: Rule) -> list[str]:
    cols = [rule.column] if rule.column else []
    if rule.kind == "pair":
        cols.append(rule.params["other"])
    if rule.kind == "unique_key":
        cols = list(rule.params.get("columns", []))
    return cols


def build_suite(dataset: str, rules: list[Rule], frame: pd.DataFrame, *, now: datetime | None = None):
    """A GX `ExpectationSuite` for `rules` and the frame to validate (with the derived rule columns)."""
    import great_expectations as gx
    import great_expectations.expectations as gxe

    _context()
    now_ts = pd.Timestamp(now or clock.now()).tz_convert("UTC")
    suite = gx.ExpectationSuite(name=f"{dataset}_suite")
    derived: dict[str, pd.Series] = {}
    for rule in rules:
        if not rule.enabled:
            continue
        if rule.kind not in ("not_null", "unique_key") and not all(c in frame for c in _columns_of(rule)):
            continue  # an optional column the source does not send
        # A key column the frame leaves out (ohlcv's `price`) takes the model's default for every row, so the
        # key is unique over the columns present: check those rather than skip the rule.
        expectation = _native(rule, frame)
        if expectation is None:
            fails, _ = evaluate(rule, frame, now_ts)
            column = f"{DERIVED_PREFIX}{rule.name}"
            derived[column] = ~fails
            expectation = gxe.ExpectColumnValuesToBeInSet(column=column, value_set=[True])
        expectation.meta = {"rule": rule.name, "kind": rule.kind, "severity": rule.severity}
        expectation.severity = "critical" if rule.severity == "error" else "warning"
        suite.add_expectation(expectation)
    validated = frame.assign(**derived) if derived else frame
    return suite, validated


def validate(
    dataset: str,
    frame: pd.DataFrame,
    rules: list[Rule],
    *,
    now: datetime | None = None,
    sample_rows: int = SAMPLE_ROWS,
) -> dict[str, Any]:
    """Run the GX suite of `rules` on `frame`; a plain, JSON-safe result dict.

    Keys: success (no failed 'error' expectation), success_all, statistics (GX's), rows, seconds,
    failed: [{rule, kind, severity, expectation, columns, unexpected_count, unexpected_percent, sample}].
    """
    started = time.perf_counter()
    frame = frame.reset_index(drop=True)
    suite, validated = build_suite(dataset, rules, frame, now=now)
    if not suite.expectations:
        return {
            "success": True,
            "success_all": True,
            "statistics": {"evaluated_expectations": 0},
            "rows": len(frame),
            "seconds": 0.0,
            "failed": [],
        }
    batch = _batch(dataset, validated)
    result = batch.validate(
        suite, result_format={"result_format": "SUMMARY", "partial_unexpected_count": sample_rows}
    )
    failed = []
    for item in result.results:
        if item.success:
            continue
        config = item.expectation_config
        meta = config.meta or {}
        outcome = item.result or {}
        index = outcome.get("partial_unexpected_index_list") or []
        index = [i for i in index if isinstance(i, int | float) and 0 <= int(i) < len(frame)][:sample_rows]
        failed.append(
            {
                "rule": meta.get("rule"),
                "kind": meta.get("kind"),
                "severity": meta.get("severity"),
                "expectation": config.type,
                "columns": {k: v for k, v in config.kwargs.items() if k.startswith("column")},
                "unexpected_count": outcome.get("unexpected_count"),
                "unexpected_percent": outcome.get("unexpected_percent"),
                "sample": records(frame.iloc[[int(i) for i in index]]) if index else [],
                "error": (item.exception_info or {}).get("exception_message")
                if isinstance(item.exception_info, dict)
                else None,
            }
        )
    stats = dict(result.statistics)
    return {
        "success": not any(f["severity"] == "error" for f in failed),
        "success_all": bool(result.success),
        "statistics": {k: (float(v) if isinstance(v, float) else v) for k, v in stats.items()},
        "rows": len(frame),
        "seconds": round(time.perf_counter() - started, 3),
        "failed": failed,
    }
