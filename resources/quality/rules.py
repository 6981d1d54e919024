"""The rule model and the built-in suites of every dataset — the ONE place where suites are defined.

A rule is data (`Rule`), evaluated vectorized by `split.py` before each write and translated into a GX 1.x
suite by `expectations.py`. The code-defined suites are mirrored into `validation_rules`
(`sync_rules_to_db`); the table then owns the operator's knobs:

* `severity` and `enabled` (and `params`) of a stored rule win over the code defaults, so an operator can
  downgrade, disable or retune a built-in rule without a release;
* a row added there for a dataset with one of the simple kinds (range, not_null, regex, pair) takes effect on
  the next load without any code change.

Kinds the table's CHECK constraint does not know (unique_key, aligned_to_interval, not_future, spacing and
code-only vectorized checks) are stored as kind 'custom' with the real kind in `params["kind"]`: they are
implemented in code, the row documents and tunes them.

Severity 'error' quarantines the row; 'warning' keeps it, counts it and lowers its quality score.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import pandas as pd
import sqlalchemy as sa

from market_warehouse.resources.sqlfiles import sql_text

log = logging.getLogger(__name__)

SIMPLE_KINDS = frozenset({"range", "not_null", "regex", "pair"})
CODE_KINDS = frozenset({"unique_key", "aligned_to_interval", "not_future", "spacing", "custom"})
KINDS = SIMPLE_KINDS | CODE_KINDS
SEVERITIES = frozenset({"error", "warning"})
PAIR_OPS = frozenset({">", ">=", "<", "<=", "==", "!="})

# A custom check returns a boolean Series, True where the row FAILS, plus the offending values as text.
CustomCheck = Callable[[pd.DataFrame], tuple[pd.Series, pd.Series]]
CUSTOM_CHECKS: dict[str, CustomCheck] = {}


@dataclass(frozen=True)
class Rule:
    """One check of one dataset.

    `params` by kind — range: min/max (+ min_exclusive/max_exclusive); regex: regex; pair: other, op;
    unique_key: columns; aligned_to_interval / not_future / spacing: interval_column (or interval),
    tolerance_seconds, series; custom: check (name registered in `CUSTOM_CHECKS`).
    Nulls pass every kind but not_null, like GX's column-map expectations.
    """

    dataset: str
    name: str
    kind: str
    column: str | None = None
    params: Mapping[str, Any] = field(default_factory=dict)
    severity: str = "error"
    enabled: bool = True
    description: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"rule {self.dataset}.{self.name}: unknown kind {self.kind!r}")
        if self.severity not in SEVERITIES:
            raise ValueError(f"rule {self.dataset}.{self.name}: severity must be error|warning")
        if self.kind == "pair" and self.params.get("op") not in PAIR_OPS:
            raise ValueError(f"rule {self.dataset}.{self.name}: pair op must be one of {sorted(PAIR_OPS)}")
        if self.kind in {"range", "not_null", "regex", "pair"} and not self.column:
            raise ValueError(f"rule {self.dataset}.{self.name}: kind {self.kind} needs a column")

    @property
    def stored_kind(self) -> str:
        """Kind as the `validation_rules` CHECK constraint knows it."""
        return self.kind if self.kind in SIMPLE_KINDS else "custom"

    @property
    def stored_params(self) -> dict[str, Any]:
        params = dict(self.params)
        if self.kind not in SIMPLE_KINDS:
            params["kind"] = self.kind
        return params


def custom_check(name: str) -> Callable[[CustomCheck], CustomCheck]:
    """Register a vectorized check usable by rules of kind 'custom' (`params={"check": name}`)."""

    def register(fn: CustomCheck) -> CustomCheck:
        CUSTOM_CHECKS[name] = fn
        return fn

    return register


# --------------------------------------------------------------------------------------------------------
# Building blocks of the built-in suites
# --------------------------------------------------------------------------------------------------------


def _not_null(dataset: str, *columns: str) -> list[Rule]:
    return [Rule(dataset, f"{c}_not_null", "not_null", c, description=f"{c} is required") for c in columns]


def _positive(dataset: str, *columns: str) -> list[Rule]:
    return [
        Rule(dataset, f"{c}_positive", "range", c, {"min": 0, "min_exclusive": True}, description=f"{c} > 0")
        for c in columns
    ]


def _non_negative(dataset: str, *columns: str, severity: str = "error") -> list[Rule]:
    return [
        Rule(dataset, f"{c}_non_negative", "range", c, {"min": 0}, severity, description=f"{c} >= 0")
        for c in columns
    ]


def _pair(dataset: str, a: str, op: str, b: str, severity: str = "error", name: str | None = None) -> Rule:
    words = {">": "gt", ">=": "ge", "<": "lt", "<=": "le", "==": "eq", "!=": "ne"}
    return Rule(
        dataset,
        name or f"{a}_{words[op]}_{b}",
        "pair",
        a,
        {"other": b, "op": op},
        severity,
        description=f"{a} {op} {b}",
    )


def _unique(dataset: str, *columns: str) -> Rule:
    return Rule(
        dataset,
        "unique_key",
        "unique_key",
        None,
        {"columns": list(columns)},
        description="natural key unique in the batch (earlier duplicates are quarantined, the last one kept)",
    )


def _aligned(dataset: str, column: str = "time") -> Rule:
    return Rule(
        dataset,
        f"{column}_aligned_to_interval",
        "aligned_to_interval",
        column,
        {"interval_column": "interval"},
        description=f"{column} is an open time of the row's interval (UTC epoch grid)",
    )


def _not_future(dataset: str, column: str = "time", *, closed: bool, tolerance_seconds: float) -> Rule:
    params: dict[str, Any] = {"tolerance_seconds": tolerance_seconds}
    if closed:
        params["interval_column"] = "interval"
    what = "candle closed (open time + interval <= now)" if closed else f"{column} not in the future"
    return Rule(dataset, f"{column}_not_future", "not_future", column, params, description=what)


def _spacing(dataset: str, series: list[str]) -> Rule:
    return Rule(
        dataset,
        "spacing",
        "spacing",
        "time",
        {"interval_column": "interval", "series": series},
        "warning",
        description="no gap before the candle within its series in the batch (a gap lowers the score)",
    )


def _symbol_format(dataset: str, shape: str) -> Rule:
    return Rule(
        dataset,
        "symbol_format",
        "regex",
        "symbol",
        {"regex": SYMBOL_REGEX},
        "warning",
        description=f"ccxt unified symbol {shape}",
    )


def _custom(dataset: str, name: str, check: str, severity: str = "error", description: str = "") -> Rule:
    return Rule(dataset, name, "custom", None, {"check": check}, severity, description=description)


# --------------------------------------------------------------------------------------------------------
# Custom vectorized checks (order books, derived fields)
# --------------------------------------------------------------------------------------------------------


def _levels_ok(levels: Any, descending: bool) -> bool:
    if levels is None or (isinstance(levels, float) and pd.isna(levels)):
        return True
    if not isinstance(levels, list | tuple):
        return False
    try:
        prices = [float(level[0]) for level in levels]
        amounts = [float(level[1]) for level in levels]
    except (TypeError, ValueError, IndexError):
        return False
    if any(p <= 0 for p in prices) or any(a < 0 for a in amounts):
        return False
    pairs = zip(prices, prices[1:], strict=False)
    return all(a > b for a, b in pairs) if descending else all(a < b for a, b in pairs)


@custom_check("levels_sorted")
def _levels_sorted(frame: pd.DataFrame) -> tuple[pd.Series, pd.Series]:
    """Bids strictly descending, asks strictly ascending, positive prices, non-negative amounts."""
    fails = pd.Series(False, index=frame.index)
    for column, descending in (("bids", True), ("asks", False)):
        if column in frame:
            ok = frame[column].map(lambda levels, d=descending: _levels_ok(levels, d))
            fails |= ~ok.astype(bool)
    shown = pd.Series("", index=frame.index, dtype=object)
    if fails.any():
        sub = frame.loc[fails]
        text = "bids=" + sub.get("bids", pd.Series(None, index=sub.index)).astype(str).str.slice(0, 80)
        text += " asks=" + sub.get("asks", pd.Series(None, index=sub.index)).astype(str).str.slice(0, 80)
        shown.loc[fails] = text
    return fails, shown


def _rel_mismatch(actual: pd.Series, expected: pd.Series, rel: float = 1e-6, abs_: float = 1e-9) -> pd.Series:
    both = actual.notna() & expected.notna()
    return both & ((actual - expected).abs() > abs_ + rel * expected.abs())


@custom_check("spread_consistent")
def _spread_consistent(frame: pd.DataFrame) -> tuple[pd.Series, pd.Series]:
    """spread = best_ask - best_bid and mid = (ask + bid) / 2, when those summary fields are given."""
    fails = pd.Series(False, index=frame.index)
    if {"best_bid", "best_ask"} <= set(frame.columns):
        bid, ask = frame["best_bid"].astype(float), frame["best_ask"].astype(float)
        if "spread" in frame:
            fails |= _rel_mismatch(frame["spread"].astype(float), ask - bid)
        if "mid_price" in frame:
            fails |= _rel_mismatch(frame["mid_price"].astype(float), (ask + bid) / 2)
    shown = pd.Series("", index=frame.index, dtype=object)
    if fails.any():
        sub = frame.loc[fails]
        parts = [
            c + "=" + sub[c].astype(str) for c in ("best_bid", "best_ask", "spread", "mid_price") if c in sub
        ]
        shown.loc[fails] = parts[0].str.cat(parts[1:], sep=" ") if len(parts) > 1 else parts[0]
    return fails, shown


@custom_check("best_matches_levels")
def _best_matches_levels(frame: pd.DataFrame) -> tuple[pd.Series, pd.Series]:
    """best_bid/best_ask equal the first level of bids/asks when both are present."""
    fails = pd.Series(False, index=frame.index)
    for best, levels in (("best_bid", "bids"), ("best_ask", "asks")):
        if best in frame and levels in frame:
            first = frame[levels].map(
                lambda v: float(v[0][0]) if isinstance(v, list | tuple) and v and _is_num(v[0][0]) else None
            )
            first = pd.to_numeric(first, errors="coerce")
            fails |= _rel_mismatch(frame[best].astype(float), first, rel=1e-12, abs_=0.0)
    shown = pd.Series("", index=frame.index, dtype=object)
    if fails.any():
        sub = frame.loc[fails]
        shown.loc[fails] = (
            "best_bid=" + sub["best_bid"].astype(str) + " best_ask=" + sub["best_ask"].astype(str)
        )
    return fails, shown


def _is_num(value: Any) -> bool:
    try:
        float(value)
    except (TypeError, ValueError, IndexError):
        return False
    return True


@custom_check("cost_consistent")
def _cost_consistent(frame: pd.DataFrame) -> tuple[pd.Series, pd.Series]:
    """A trade's cost is price x amount (contract sizes make it differ: warning only)."""
    fails = pd.Series(False, index=frame.index)
    if {"price", "amount", "cost"} <= set(frame.columns):
        fails = _rel_mismatch(frame["cost"].astype(float), frame["price"] * frame["amount"], rel=1e-4)
    shown = pd.Series("", index=frame.index, dtype=object)
    if fails.any():
        sub = frame.loc[fails]
        shown.loc[fails] = (
            "cost=" + sub["cost"].astype(str) + " price*amount=" + (sub["price"] * sub["amount"]).astype(str)
        )
    return fails, shown


@custom_check("has_value")
def _has_value(frame: pd.DataFrame) -> tuple[pd.Series, pd.Series]:
    """A generic series point carries a value or a close."""
    cols = [c for c in ("value", "close") if c in frame]
    fails = frame[cols].isna().all(axis=1) if cols else pd.Series(True, index=frame.index)
    return fails, pd.Series("value=None close=None", index=frame.index, dtype=object).where(fails, "")


# --------------------------------------------------------------------------------------------------------
# Built-in suites
# --------------------------------------------------------------------------------------------------------

SYMBOL_REGEX = r"^[A-Za-z0-9._\-]+/[A-Za-z0-9._\-]+(?::[A-Za-z0-9._\-]+)?(?:-[A-Za-z0-9._\-]+)*$"
INTERVAL_REGEX = r"^[1-9][0-9]*[smhdwMy]$"
CANDLE_KEY = ["exchange", "symbol", "interval", "time"]


def _ohlcv() -> list[Rule]:
    d = "ohlcv"
    return [
        *_not_null(d, "exchange", "symbol", "interval", "time", "open", "high", "low", "close", "volume"),
        Rule(d, "interval_format", "regex", "interval", {"regex": INTERVAL_REGEX}, description="e.g. 1m, 1h"),
        *_positive(d, "open", "high", "low", "close"),
        *_non_negative(d, "volume"),
        _pair(d, "high", ">=", "open"),
        _pair(d, "high", ">=", "close"),
        _pair(d, "low", "<=", "open"),
        _pair(d, "low", "<=", "close"),
        _pair(d, "high", ">=", "low"),
        _unique(d, *CANDLE_KEY[:3], "price", CANDLE_KEY[3]),  # one candle per price kind (migration 0005)
        _aligned(d),
        _not_future(d, closed=True, tolerance_seconds=0),
        *_non_negative(d, "quote_volume", "trades_count", severity="warning"),
        _symbol_format(d, "BASE/QUOTE[:SETTLE]"),
        _spacing(d, ["exchange", "symbol", "interval", "price"]),
    ]


def _market_trades() -> list[Rule]:
    d = "market_trades"
    return [
        *_not_null(d, "exchange", "symbol", "trade_id", "time", "price", "amount"),
        *_positive(d, "price", "amount"),
        *_non_negative(d, "cost"),
        Rule(
            d, "side_valid", "regex", "side", {"regex": "^(?:buy|sell)$"}, description="side is buy or sell"
        ),
        _unique(d, "exchange", "symbol", "trade_id", "time"),
        _not_future(d, closed=False, tolerance_seconds=60),
        _custom(d, "cost_consistent", "cost_consistent", "warning", "cost = price * amount"),
    ]


def _orderbook_snapshots() -> list[Rule]:
    d = "orderbook_snapshots"
    return [
        *_not_null(d, "exchange", "symbol", "time"),
        *_positive(d, "best_bid", "best_ask"),
        _pair(d, "best_bid", "<", "best_ask", name="bid_below_ask"),
        *_non_negative(d, "bid_depth", "ask_depth"),
        _custom(d, "levels_sorted", "levels_sorted", description="bids descending, asks ascending"),
        _custom(d, "spread_consistent", "spread_consistent", description="spread = ask - bid, mid = (a+b)/2"),
        _custom(d, "best_matches_levels", "best_matches_levels", "warning", "best prices = first levels"),
        _unique(d, "exchange", "symbol", "time"),
        _not_future(d, closed=False, tolerance_seconds=60),
    ]


def _market_metrics() -> list[Rule]:
    d = "market_metrics"
    return [
        *_not_null(d, "exchange", "symbol", "interval", "time"),
        *_positive(d, "last_price"),
        *_non_negative(d, "volume_24h", "quote_volume_24h", "volatility", "atr", "open_interest"),
        _pair(d, "high_24h", ">=", "low_24h"),
        _pair(d, "bid", "<=", "ask", severity="warning"),
        _unique(d, *CANDLE_KEY),
        _aligned(d),
        _not_future(d, closed=False, tolerance_seconds=60),
    ]


def _timeseries_data() -> list[Rule]:
    d = "timeseries_data"
    return [
        *_not_null(d, "source_id", "time"),
        _custom(d, "has_value", "has_value", description="value or close present"),
        _pair(d, "high", ">=", "low"),
        *_non_negative(d, "volume"),
        _unique(d, "source_id", "time"),
        _not_future(d, closed=False, tolerance_seconds=60),
    ]


def _features() -> list[Rule]:
    d = "features"
    return [
        *_not_null(d, "exchange", "symbol", "interval", "feature_set", "time"),
        Rule(d, "rsi_range", "range", "rsi", {"min": 0, "max": 100}, description="RSI in [0, 100]"),
        *_non_negative(d, "volatility", "atr"),
        _pair(d, "bb_upper", ">=", "bb_lower"),
        _unique(d, "exchange", "symbol", "interval", "feature_set", "time"),
        _aligned(d),
        _not_future(d, closed=True, tolerance_seconds=0),
    ]


def _forecasts() -> list[Rule]:
    d = "forecasts"
    return [
        *_not_null(
            d, "model_id", "symbol", "interval", "generated_at", "target_time", "horizon_step", "point"
        ),
        Rule(
            d, "horizon_step_positive", "range", "horizon_step", {"min": 1}, description="horizon_step >= 1"
        ),
        _pair(d, "target_time", ">", "generated_at"),
        _pair(d, "upper_80", ">=", "lower_80"),
        _pair(d, "upper_95", ">=", "lower_95"),
        _pair(d, "upper_95", ">=", "upper_80", severity="warning"),
        _pair(d, "lower_95", "<=", "lower_80", severity="warning"),
        _unique(d, "model_id", "symbol", "interval", "generated_at", "target_time"),
        _aligned(d, "target_time"),
    ]


# Funding rates beyond +-5 % per funding interval are data errors on every venue we know (Binance caps its
# perpetuals at +-3 % or less); a deployment with wilder markets overrides the bounds in validation_rules.
FUNDING_RATE_BOUND = 0.05


def _funding_rates() -> list[Rule]:
    d = "funding_rates"
    return [
        *_not_null(d, "exchange", "symbol", "time", "rate"),
        Rule(
            d,
            "rate_bounds",
            "range",
            "rate",
            {"min": -FUNDING_RATE_BOUND, "max": FUNDING_RATE_BOUND},
            description=f"|rate| <= {FUNDING_RATE_BOUND} per funding (override in validation_rules)",
        ),
        *_positive(d, "mark_price", "index_price"),
        Rule(d, "interval_format", "regex", "interval", {"regex": INTERVAL_REGEX}, description="e.g. 8h"),
        _unique(d, "exchange", "symbol", "time"),
        _not_future(d, closed=False, tolerance_seconds=60),
        _symbol_format(d, "BASE/QUOTE:SETTLE"),
    ]


def _open_interest() -> list[Rule]:
    d = "open_interest"
    return [
        *_not_null(d, "exchange", "symbol", "interval", "time"),
        Rule(d, "interval_format", "regex", "interval", {"regex": INTERVAL_REGEX}, description="e.g. 1h"),
        *_non_negative(d, "amount", "value"),
        _unique(d, "exchange", "symbol", "interval", "time"),
        _aligned(d),
        _not_future(d, closed=False, tolerance_seconds=60),
    ]


BUILTIN_SUITES: dict[str, Callable[[], list[Rule]]] = {
    "ohlcv": _ohlcv,
    "market_trades": _market_trades,
    "orderbook_snapshots": _orderbook_snapshots,
    "market_metrics": _market_metrics,
    "timeseries_data": _timeseries_data,
    "features": _features,
    "forecasts": _forecasts,
    "funding_rates": _funding_rates,
    "open_interest": _open_interest,
}


def code_rules(dataset: str) -> list[Rule]:
    """The built-in suite of `dataset` (empty for datasets without one)."""
    build = BUILTIN_SUITES.get(dataset)
    return build() if build else []


# --------------------------------------------------------------------------------------------------------
# validation_rules: mirror and overrides
# --------------------------------------------------------------------------------------------------------


def sync_rules_to_db(conn: sa.Connection, datasets: list[str] | None = None) -> int:
    """Store the code-defined suites in `validation_rules`; idempotent by (dataset, name).

    Existing rows keep their operator-owned `severity`, `enabled` and `params`; only kind, column and
    description follow the code. Returns the number of rows inserted.
    """
    rows = []
    for dataset in datasets or list(BUILTIN_SUITES):
        for rule in code_rules(dataset):
            rows.append(
                {
                    "dataset": rule.dataset,
                    "name": rule.name,
                    "kind": rule.stored_kind,
                    "column_name": rule.column,
                    "params": rule.stored_params,
                    "severity": rule.severity,
                    "description": rule.description,
                }
            )
    if not rows:
        return 0
    stmt = sql_text("common/quality_sync_rules").bindparams(sa.bindparam("rows", type_=sa.JSON))
    return int(conn.execute(stmt, {"rows": rows}).scalar() or 0)


def _from_row(row: Mapping[str, Any], base: Rule | None) -> Rule | None:
    params = dict(row["params"] or {})
    if base is not None:
        kind = base.kind
        params.pop("kind", None)
        merged = {**base.params, **params}
        return replace(base, params=merged, severity=row["severity"], enabled=row["enabled"])
    kind = row["kind"]
    if kind not in SIMPLE_KINDS:
        real = params.pop("kind", None)
        if real in CODE_KINDS - {"custom"}:
            kind = real
        elif params.get("check") in CUSTOM_CHECKS:
            kind = "custom"
        else:
            log.warning(
                "validation rule %s.%s of kind %r has no implementation in code; ignored",
                row["dataset"],
                row["name"],
                kind,
            )
            return None
    try:
        return Rule(
            row["dataset"],
            row["name"],
            kind,
            row["column_name"],
            params,
            row["severity"],
            row["enabled"],
            row["description"],
        )
    except ValueError as exc:
        log.warning("validation rule ignored: %s", exc)
        return None


def load_rules(conn: sa.Connection | None, dataset: str, *, include_disabled: bool = False) -> list[Rule]:
    """Effective rules of `dataset`: the code suite overridden by `validation_rules`, plus DB-only rules.

    `conn=None` gives the code defaults (no database needed, e.g. for the benchmark).
    """
    rules = {r.name: r for r in code_rules(dataset)}
    if conn is not None:
        stored = conn.execute(sql_text("common/quality_load_rules"), {"dataset": dataset}).mappings().all()
        for row in stored:
            rule = _from_row(row, rules.get(row["name"]))
            if rule is not None:
                rules[rule.name] = rule
    out = list(rules.values())
    return out if include_disabled else [r for r in out if r.enabled]
