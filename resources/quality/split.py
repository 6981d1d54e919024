"""Row-level split before the write: typed good rows vs rejected raw rows, each with its rule and message.

Everything is vectorized over the batch (numpy/pandas masks); per-row Python only runs for JSON columns of
order books and for building the messages of the (few) failing rows.

A rejected row's `rule` is the FIRST failing error rule in suite order (so `quarantine_reasons` adds up to
the rejected count); its `message` lists EVERY failing error rule with the offending values, joined by
"; ". Rows that cannot even be typed fail the pseudo-rule `parseable` and are not evaluated further.
`unique_key` runs last, over the rows that passed everything else, so a valid row is never displaced by a
later invalid duplicate; of valid duplicates the last one is kept and earlier ones are rejected.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
import pandas as pd
import sqlalchemy as sa

from market_warehouse.resources import clock
from market_warehouse.resources.columns import UnusableColumn, kind_of, parse
from market_warehouse.resources.intervals import parse_interval
from market_warehouse.resources.models import Base
from market_warehouse.resources.quality.rules import CUSTOM_CHECKS, Rule

PARSEABLE = "parseable"
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


class StructuralError(ValueError):
    """The batch as a whole cannot be loaded (unknown table, missing key column, naive timestamps)."""


@dataclass
class SplitResult:
    good: pd.DataFrame  # typed rows passing every error rule, original index
    rejected: pd.DataFrame  # raw rows as given, original index
    rejected_rule: pd.Series  # first failing error rule per rejected row
    rejected_message: pd.Series  # every failing error rule with offending values
    warnings: pd.Series  # per good row: number of warning rules it fails
    warning_counts: dict[str, int] = field(default_factory=dict)
    error_counts: dict[str, int] = field(default_factory=dict)  # first failing rule -> rows

    @property
    def fetched(self) -> int:
        return len(self.good) + len(self.rejected)


# --------------------------------------------------------------------------------------------------------
# Types
# --------------------------------------------------------------------------------------------------------


def table_of(dataset: str) -> sa.Table:
    try:
        return Base.metadata.tables[dataset]
    except KeyError:
        raise StructuralError(f"unknown dataset {dataset!r}: no warehouse table of that name") from None


def key_columns(dataset: str) -> list[str]:
    """The natural key: the primary key, the identity column excluded."""
    table = table_of(dataset)
    return [c.name for c in table.primary_key.columns if c.identity is None]


def coerce(dataset: str, frame: pd.DataFrame) -> tuple[pd.DataFrame, pd.Series, pd.Series]:
    """Type every column as its warehouse column (`resources.columns.parse`: typed for storage, so the
    upsert has nothing left to convert); returns typed frame, unparseable mask, messages."""
    table = table_of(dataset)
    unknown = [c for c in frame.columns if c not in table.c]
    if unknown:
        raise StructuralError(f"{dataset}: columns not in the table: {', '.join(map(str, unknown))}")
    missing = [c for c in key_columns(dataset) if c not in frame.columns]
    defaults = {c: table.c[c].info["key_default"] for c in missing if "key_default" in table.c[c].info}
    if defaults:  # e.g. ohlcv's price kind: candles given without one are traded prices (as the upsert)
        frame = frame.assign(**defaults)
        missing = [c for c in missing if c not in defaults]
    if missing:
        raise StructuralError(f"{dataset}: key column(s) missing from the batch: {', '.join(missing)}")
    typed = {}
    bad = pd.Series(False, index=frame.index)
    messages: list[pd.Series] = []
    for name in frame.columns:
        try:
            values, col_bad, text = parse(frame[name], kind_of(table.c[name], default="text"))
        except UnusableColumn as exc:
            raise StructuralError(str(exc)) from None
        typed[name] = values
        if col_bad.any():
            bad |= col_bad
            messages.append(text[col_bad])
    out = pd.DataFrame(typed, index=frame.index)
    msg = pd.Series(dtype=object)
    if messages:
        msg = pd.concat(messages).groupby(level=0).agg(", ".join)
    return out, bad, msg


# --------------------------------------------------------------------------------------------------------
# Intervals
# --------------------------------------------------------------------------------------------------------


def interval_seconds(interval: str) -> float:
    """Nominal length (months 30 days, years 365 days) — as ccxt's parse_timeframe."""
    n, unit = parse_interval(str(interval))
    return n * {"M": 2_592_000, "y": 31_536_000}.get(unit, _UNITS.get(unit, 0))


def _aligned(times: pd.Series, interval: str) -> pd.Series:
    n, unit = parse_interval(str(interval))
    if unit in _UNITS:
        ns = (
            times.astype("int64").to_numpy()
            if times.dtype.unit == "ns"
            else times.dt.as_unit("ns").astype("int64")
        )
        ns = np.asarray(ns)
        step = n * _UNITS[unit] * 1_000_000_000
        offset = 4 * 86_400 * 1_000_000_000 if unit == "w" else 0  # 1970-01-05 was a Monday
        return pd.Series((ns - offset) % step == 0, index=times.index)
    midnight = times.dt.floor("D") == times
    if unit == "M":
        return midnight & (times.dt.day == 1) & ((times.dt.month - 1) % n == 0)
    return midnight & (times.dt.day == 1) & (times.dt.month == 1) & (times.dt.year % n == 0)


def _by_interval(intervals: pd.Series) -> list[tuple[object, np.ndarray]]:
    """(interval, row positions) per distinct interval: factorize once, no per-row Python."""
    codes, uniques = pd.factorize(intervals)
    if len(uniques) == 1 and (codes == 0).all():
        return [(uniques[0], np.arange(len(codes)))]
    return [(value, np.flatnonzero(codes == i)) for i, value in enumerate(uniques)]


def close_times(times: pd.Series, intervals: pd.Series | str) -> pd.Series:
    """Open time + interval, calendar-aware for months and years (NaT for an unknown interval)."""
    if isinstance(intervals, str):
        intervals = pd.Series(intervals, index=times.index)
    out = pd.Series(pd.NaT, index=times.index, dtype=times.dtype)
    for interval, pos in _by_interval(intervals):
        try:
            n, unit = parse_interval(str(interval))
        except ValueError:
            continue
        part = times.iloc[pos]
        if unit == "M":
            shifted = part + pd.DateOffset(months=n)
        elif unit == "y":
            shifted = part + pd.DateOffset(years=n)
        else:
            shifted = part + pd.Timedelta(seconds=n * _UNITS[unit])
        if len(pos) == len(out):
            out = shifted
        else:
            out.iloc[pos] = shifted.to_numpy()
    return out


# --------------------------------------------------------------------------------------------------------
# Rule evaluation: each returns (fails, offending values as text for failing rows)
# --------------------------------------------------------------------------------------------------------

_OPS = {
    ">": np.greater,
    ">=": np.greater_equal,
    "<": np.less,
    "<=": np.less_equal,
    "==": np.equal,
    "!=": np.not_equal,
}


def _shown(frame: pd.DataFrame, fails: pd.Series, columns: Sequence[str]) -> pd.Series:
    if not fails.any():
        return pd.Series(dtype=object)
    sub = frame.loc[fails]
    parts = [
        c + "=" + sub[c].astype(str) if c in sub else pd.Series(f"{c}=<missing>", index=sub.index)
        for c in columns
    ]
    return parts[0].str.cat(parts[1:], sep=" ") if len(parts) > 1 else parts[0]


def _eval_not_null(rule: Rule, frame: pd.DataFrame, ctx: dict) -> tuple[pd.Series, pd.Series]:
    if rule.column not in frame:
        fails = pd.Series(True, index=frame.index)
        return fails, pd.Series(f"{rule.column}=<column missing>", index=frame.index)
    fails = frame[rule.column].isna()
    return fails, _shown(frame, fails, [rule.column])


def _eval_range(rule: Rule, frame: pd.DataFrame, ctx: dict) -> tuple[pd.Series, pd.Series]:
    values = frame[rule.column]
    if not pd.api.types.is_numeric_dtype(values.dtype):
        values = pd.to_numeric(values, errors="coerce")
    arr = values.to_numpy(dtype="float64", na_value=np.nan)
    fails = np.zeros(len(arr), dtype=bool)
    p = rule.params
    with np.errstate(invalid="ignore"):
        if p.get("min") is not None:
            fails |= (arr <= p["min"]) if p.get("min_exclusive") else (arr < p["min"])
        if p.get("max") is not None:
            fails |= (arr >= p["max"]) if p.get("max_exclusive") else (arr > p["max"])
    fails = pd.Series(fails & ~np.isnan(arr), index=frame.index)
    return fails, _shown(frame, fails, [rule.column])


def _eval_regex(rule: Rule, frame: pd.DataFrame, ctx: dict) -> tuple[pd.Series, pd.Series]:
    """re.search semantics, as GX's ExpectColumnValuesToMatchRegex (anchor the pattern to match fully).

    Matched once per distinct value: symbols, intervals and sides repeat across a batch.
    """
    codes, uniques = pd.factorize(frame[rule.column])
    fails = np.zeros(len(frame), dtype=bool)
    if len(uniques):
        pattern = re.compile(rule.params["regex"])
        bad = np.array([pattern.search(str(v)) is None for v in uniques], dtype=bool)
        fails = np.append(bad, False)[codes]  # code -1 (null) passes
    fails = pd.Series(fails, index=frame.index)
    return fails, _shown(frame, fails, [rule.column])


def _eval_pair(rule: Rule, frame: pd.DataFrame, ctx: dict) -> tuple[pd.Series, pd.Series]:
    a, b = frame[rule.column], frame[rule.params["other"]]
    both = a.notna() & b.notna()
    if isinstance(a.dtype, pd.DatetimeTZDtype) or isinstance(b.dtype, pd.DatetimeTZDtype):
        left, right = a.to_numpy(), b.to_numpy()
        ok = _OPS[rule.params["op"]](left, right)
    else:
        left = a.to_numpy(dtype="float64", na_value=np.nan)
        right = b.to_numpy(dtype="float64", na_value=np.nan)
        with np.errstate(invalid="ignore"):
            ok = _OPS[rule.params["op"]](left, right)
    fails = both & ~pd.Series(np.asarray(ok, dtype=bool), index=frame.index)
    return fails, _shown(frame, fails, [rule.column, rule.params["other"]])


def _intervals(rule: Rule, frame: pd.DataFrame) -> pd.Series | None:
    if rule.params.get("interval"):
        return pd.Series(rule.params["interval"], index=frame.index)
    col = rule.params.get("interval_column")
    return frame[col] if col and col in frame else None


def _eval_aligned(rule: Rule, frame: pd.DataFrame, ctx: dict) -> tuple[pd.Series, pd.Series]:
    times = frame[rule.column]
    intervals = _intervals(rule, frame)
    fails = np.zeros(len(frame), dtype=bool)
    if intervals is None:
        return pd.Series(fails, index=frame.index), pd.Series(dtype=object)
    present = times.notna().to_numpy()
    for interval, pos in _by_interval(intervals):
        try:
            ok = _aligned(times.iloc[pos], interval).to_numpy(dtype=bool)
        except ValueError:
            fails[pos] = True  # an unknown interval cannot be aligned to
            continue
        fails[pos] = ~ok & present[pos]
    fails = pd.Series(fails, index=frame.index)
    cols = [rule.column] + ([rule.params["interval_column"]] if rule.params.get("interval_column") else [])
    return fails, _shown(frame, fails, cols)


def _eval_not_future(rule: Rule, frame: pd.DataFrame, ctx: dict) -> tuple[pd.Series, pd.Series]:
    times = frame[rule.column]
    intervals = _intervals(rule, frame)
    ends = close_times(times, intervals) if intervals is not None else times
    limit = ctx["now"] + pd.Timedelta(seconds=float(rule.params.get("tolerance_seconds", 0)))
    fails = (ends > limit).fillna(False).astype(bool)
    shown = _shown(frame, fails, [rule.column])
    if fails.any():
        shown = shown + f" > now={ctx['now'].isoformat()}"
    return fails, shown


def _eval_spacing(rule: Rule, frame: pd.DataFrame, ctx: dict) -> tuple[pd.Series, pd.Series]:
    """Gap before the row within its series and this batch: more than 1.5 nominal intervals.

    Sorted with numpy (group codes, then time) rather than a multi-column sort_values: 10x faster.
    """
    series = [c for c in rule.params.get("series", []) if c in frame]
    intervals = _intervals(rule, frame)
    fails = pd.Series(False, index=frame.index)
    if intervals is None or frame.empty:
        return fails, pd.Series(dtype=object)
    codes, uniques = pd.factorize(intervals)
    nominal = np.append(np.array([_safe_seconds(v) for v in uniques], dtype="float64"), np.nan)[codes]
    codes = (
        frame.groupby(series, sort=False, dropna=False).ngroup().to_numpy()
        if series
        else np.zeros(len(frame))
    )
    times = frame[rule.column]
    ns = times.dt.as_unit("ns").astype("int64").to_numpy()
    valid = times.notna().to_numpy()
    order = np.lexsort((ns, codes))
    ns_sorted, codes_sorted, valid_sorted = ns[order], codes[order], valid[order]
    gap = np.full(len(frame), np.nan)
    same = (codes_sorted[1:] == codes_sorted[:-1]) & valid_sorted[1:] & valid_sorted[:-1]
    gap[order[1:]] = np.where(same, (ns_sorted[1:] - ns_sorted[:-1]) / 1e9, np.nan)
    with np.errstate(invalid="ignore"):
        fails = pd.Series(gap > 1.5 * nominal, index=frame.index)
    shown = pd.Series(dtype=object)
    if fails.any():
        gap_s = pd.Series(gap, index=frame.index)
        shown = (
            rule.column
            + "="
            + frame.loc[fails, rule.column].astype(str)
            + " gap="
            + gap_s[fails].astype(str)
            + "s"
        )
    return fails, shown


def _safe_seconds(interval: object) -> float:
    try:
        return interval_seconds(str(interval))
    except ValueError:
        return np.nan


def _eval_unique(rule: Rule, frame: pd.DataFrame, ctx: dict) -> tuple[pd.Series, pd.Series]:
    cols = [c for c in rule.params.get("columns", []) if c in frame]
    fails = frame.duplicated(cols, keep="last") if cols else pd.Series(False, index=frame.index)
    shown = _shown(frame, fails, cols)
    if fails.any():
        shown = shown + " (a later row of the batch has the same key)"
    return fails, shown


def _eval_custom(rule: Rule, frame: pd.DataFrame, ctx: dict) -> tuple[pd.Series, pd.Series]:
    check = CUSTOM_CHECKS.get(rule.params.get("check", rule.name))
    if check is None:
        return pd.Series(False, index=frame.index), pd.Series(dtype=object)
    fails, shown = check(frame)
    return fails.fillna(False).astype(bool), shown


EVALUATORS = {
    "not_null": _eval_not_null,
    "range": _eval_range,
    "regex": _eval_regex,
    "pair": _eval_pair,
    "aligned_to_interval": _eval_aligned,
    "not_future": _eval_not_future,
    "spacing": _eval_spacing,
    "unique_key": _eval_unique,
    "custom": _eval_custom,
}


def _applicable(rule: Rule, frame: pd.DataFrame) -> bool:
    """A rule on an optional column absent from the batch does not apply (not_null does: it fails)."""
    if rule.kind == "not_null":
        return True
    needed = [rule.column] if rule.column and rule.kind not in {"spacing"} else []
    if rule.kind == "pair":
        needed.append(rule.params["other"])
    return all(c in frame for c in needed)


def evaluate(rule: Rule, frame: pd.DataFrame, now: pd.Timestamp) -> tuple[pd.Series, pd.Series]:
    """Failing mask and offending values of one rule (public for the GX suite and the benchmark)."""
    if not _applicable(rule, frame):
        return pd.Series(False, index=frame.index), pd.Series(dtype=object)
    fails, shown = EVALUATORS[rule.kind](rule, frame, {"now": now})
    if len(fails) != len(frame) or fails.index is not frame.index and not fails.index.equals(frame.index):
        fails = fails.reindex(frame.index, fill_value=False)
    return fails.astype(bool), shown


# --------------------------------------------------------------------------------------------------------
# The split
# --------------------------------------------------------------------------------------------------------


def split_frame(
    dataset: str, frame: pd.DataFrame, rules: Sequence[Rule], *, now: datetime | None = None
) -> SplitResult:
    """Type `frame` as `dataset`'s table, run `rules`, and split good rows from rejected ones.

    Bookkeeping is positional (numpy) so a batch of a million rows costs the rules, not the indexing.
    """
    now_ts = pd.Timestamp(now or clock.now()).tz_convert("UTC")
    typed, unparseable_s, parse_msg = coerce(dataset, frame)
    index = frame.index
    n = len(frame)
    errors = [r for r in rules if r.enabled and r.severity == "error" and r.kind != "unique_key"]
    uniques = [r for r in rules if r.enabled and r.severity == "error" and r.kind == "unique_key"]
    warning_rules = [r for r in rules if r.enabled and r.severity == "warning"]

    unparseable = unparseable_s.to_numpy(dtype=bool)
    first = np.where(unparseable, 0, -1)  # index into `names`; -1 = not rejected
    names = [PARSEABLE]
    rejected = unparseable.copy()
    messages: list[tuple[np.ndarray, pd.Series]] = []
    if unparseable.any():
        pos = np.flatnonzero(unparseable)
        messages.append((pos, f"{PARSEABLE}: " + parse_msg.reindex(index[pos]).astype(str)))

    def record(
        rule: Rule, positions: np.ndarray, fails: pd.Series, shown: pd.Series, overwrite: bool
    ) -> None:
        failing = fails.index[fails.to_numpy()]
        messages.append((positions, f"{rule.name}: " + shown.reindex(failing).fillna("").astype(str)))
        names.append(rule.name)
        code = len(names) - 1
        first[positions] = code if overwrite else np.where(first[positions] < 0, code, first[positions])
        rejected[positions] = True

    cand_pos = np.flatnonzero(~unparseable)
    candidates = typed if len(cand_pos) == n else typed.iloc[cand_pos]
    for rule in errors:
        fails, shown = evaluate(rule, candidates, now_ts)
        mask = fails.to_numpy()
        if mask.any():
            record(rule, cand_pos[mask], fails, shown, overwrite=False)
    for rule in uniques:
        surv_pos = np.flatnonzero(~rejected)
        survivors = typed if len(surv_pos) == n else typed.iloc[surv_pos]
        fails, shown = evaluate(rule, survivors, now_ts)
        mask = fails.to_numpy()
        if mask.any():
            record(rule, surv_pos[mask], fails, shown, overwrite=True)

    good_pos = np.flatnonzero(~rejected)
    good = typed if len(good_pos) == n else typed.iloc[good_pos]
    # Warnings look at the batch as sent (every parseable row): a candle the source sent but that was
    # quarantined is not a gap in the source's spacing. Only the kept rows are counted and down-scored.
    kept = ~rejected[cand_pos]
    warn_count = np.zeros(len(good), dtype="int64")
    warning_counts: dict[str, int] = {}
    for rule in warning_rules:
        fails, _ = evaluate(rule, candidates, now_ts)
        mask = fails.to_numpy()[kept]
        if mask.any():
            warning_counts[rule.name] = int(mask.sum())
            warn_count += mask

    rej_pos = np.flatnonzero(rejected)
    rej_index = index[rej_pos]
    if messages:
        joined = pd.concat([pd.Series(msg.to_numpy(), index=pos) for pos, msg in messages])
        by_pos = joined.groupby(level=0, sort=False).agg("; ".join)
        rejected_message = pd.Series(by_pos.reindex(rej_pos).to_numpy(), index=rej_index, dtype=object)
    else:
        rejected_message = pd.Series(dtype=object)
    rejected_rule = pd.Series(np.asarray(names, dtype=object)[first[rej_pos]], index=rej_index, dtype=object)
    return SplitResult(
        good=good,
        rejected=frame.iloc[rej_pos],
        rejected_rule=rejected_rule,
        rejected_message=rejected_message,
        warnings=pd.Series(warn_count, index=good.index),
        warning_counts=warning_counts,
        error_counts={k: int(v) for k, v in rejected_rule.value_counts(sort=False).items()},
    )
