"""How long data lives and when it is compressed: the `maintenance:` section of the universe file.

Default: **everything is kept**. Retention applies only to the tables (and, for ohlcv, the candle
intervals) a user lists; nothing is ever dropped because of a built-in default, so a migrated history
survives any number of nightly runs. An example to copy into your universe file:

```yaml
maintenance:
  compression:
    after: 7d                  # chunks whose whole range is older than this go to the columnstore
    tables: [ohlcv, market_trades, orderbook_snapshots, market_metrics, features]
  retention:                   # whole chunks / partitions older than this are dropped; unlisted: forever
    ohlcv: {1m: 90d}           # per candle interval; other intervals (and the 1h/1d aggregates) forever
    market_trades: 30d
  cold:                        # optional: export expired pieces to Parquet before they are dropped
    ohlcv: /srv/cold           # per table (a folder or an fsspec URL such as s3://bucket/cold) ...
  # cold: /srv/cold            # ... or one location for every table with a retention
```

Durations use the project's interval notation (`resources.intervals`: '90d', '12h', '4w'); `forever` or
null keeps data. The aggregates `ohlcv_1h` / `ohlcv_1d` are never expired: they are what remains of old
candles. Errors name the file and the key. `market-warehouse maintenance plan` shows what a policy would
drop before the nightly job does it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from market_warehouse.resources.intervals import IntervalError, interval_to_timedelta, validate_interval
from market_warehouse.resources.models import TIMESERIES
from market_warehouse.resources.settings import ConfigurationError
from market_warehouse.resources.universe_file import file_version, read_document, universe_path

FOREVER = None
ALL_INTERVALS = "*"  # key of a per-interval mapping that applies to intervals not listed

# Tables whose columnstore settings are declared in sql/timescaledb/columnstore_settings.sql (ohlcv's
# segmentby gained the price kind in migration 0005: sql/timescaledb/ohlcv_columnstore_by_price.sql).
COMPRESSIBLE_TABLES = ("ohlcv", "market_metrics", "features", "market_trades", "orderbook_snapshots")
# Tables whose retention may differ per candle interval (they have an `interval` column in their key).
PER_INTERVAL_TABLES = ("ohlcv",)
AGGREGATES = ("ohlcv_1h", "ohlcv_1d")


@dataclass(frozen=True)
class MaintenancePolicy:
    """Retention per table (per interval for ohlcv) and the age at which chunks are compressed."""

    # table -> {interval or '*': max age}; tables without retention are absent.
    retention: Mapping[str, Mapping[str, timedelta]] = field(default_factory=dict)
    compress_after: timedelta = timedelta(days=7)
    compress_tables: tuple[str, ...] = COMPRESSIBLE_TABLES
    # table (or '*' for every table) -> cold location; retention exports there before it drops.
    cold: Mapping[str, str] = field(default_factory=dict)

    def cold_for(self, table: str) -> str | None:
        """Where `table`'s expired rows are exported before they leave, or None (dropped for good)."""
        return self.cold.get(table, self.cold.get(ALL_INTERVALS))

    def retention_for(self, table: str, interval: str | None = None) -> timedelta | None:
        """Max age of `table`'s rows (of `interval` for per-interval tables), or None for forever."""
        rules = self.retention.get(table, {})
        if interval is not None and interval in rules:
            return rules[interval]
        return rules.get(ALL_INTERVALS)

    def describe(self) -> dict[str, str]:
        """Flat, readable form for run metadata: {'ohlcv[1m]': '90d', 'compress_after': '7d'}."""
        out: dict[str, str] = {}
        if not self.retention:
            out["retention"] = "none configured: everything is kept"
        for table, rules in sorted(self.retention.items()):
            for interval, age in sorted(rules.items()):
                key = table if interval == ALL_INTERVALS else f"{table}[{interval}]"
                out[key] = format_age(age)
        out["compress_after"] = format_age(self.compress_after)
        for table, location in sorted(self.cold.items()):
            out["cold" if table == ALL_INTERVALS else f"cold[{table}]"] = redact_location(location)
        return out


def format_age(delta: timedelta) -> str:
    """A duration as days for people and metadata: 90 days -> "90d", 12 hours -> "0.5d"."""
    return f"{delta.total_seconds() / 86400:g}d"


def redact_location(location: str) -> str:
    """A cold location for logs and metadata: a password written in an URL is replaced by ***."""
    parts = urlsplit(location)
    if parts.password is None:
        return location
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
    return urlunsplit(parts._replace(netloc=netloc))


# No retention: deleting data must be a decision of the user, never a default (issue 11: a default
# `ohlcv: {1m: 90d}` dropped a freshly migrated 2017 history on the first night, silently).
DEFAULT_POLICY = MaintenancePolicy(retention={}, compress_after=timedelta(days=7))


def load_policy(path: str | Path | None = None) -> MaintenancePolicy:
    """The policy of the universe file (`MW_UNIVERSE` or the shipped one); defaults where it says nothing.

    Only the `maintenance:` section is read: the exchanges are the sources' business (validated when
    they are pulled), so a policy does not depend on them.
    """
    resolved = universe_path(path)
    document = read_document(resolved, file_version(resolved))
    if not isinstance(document, Mapping):
        raise ConfigurationError(f"{resolved}: expected a mapping with `exchanges:` and `maintenance:`")
    return parse_policy(document.get("maintenance"), str(resolved))


def parse_policy(raw: Any, where: str = "maintenance") -> MaintenancePolicy:
    """Validate a parsed `maintenance:` mapping; missing sections keep `DEFAULT_POLICY`'s values.

    Retention is exactly what the mapping lists (`DEFAULT_POLICY` has none): an unlisted table is kept.
    """
    if raw is None:
        return DEFAULT_POLICY
    if not isinstance(raw, Mapping):
        raise ConfigurationError(f"{where}: `maintenance` must be a mapping")
    unknown = set(raw) - {"compression", "retention", "cold"}
    if unknown:
        raise ConfigurationError(
            f"{where}: unknown key(s) maintenance.{', maintenance.'.join(sorted(map(str, unknown)))} "
            "(expected compression, retention, cold)"
        )
    compress_after, compress_tables = DEFAULT_POLICY.compress_after, DEFAULT_POLICY.compress_tables
    compression = raw.get("compression")
    if compression is not None:
        if not isinstance(compression, Mapping) or set(compression) - {"after", "tables"}:
            raise ConfigurationError(f"{where}: maintenance.compression takes `after` and `tables`")
        if "after" in compression:
            after = _duration(compression["after"], f"{where}: maintenance.compression.after")
            if after is None:
                raise ConfigurationError(
                    f"{where}: maintenance.compression.after needs a duration such as 7d"
                )
            compress_after = after
        if "tables" in compression:
            compress_tables = _tables(compression["tables"], f"{where}: maintenance.compression.tables")
    retention = dict(DEFAULT_POLICY.retention)
    if raw.get("retention") is not None:
        if not isinstance(raw["retention"], Mapping):
            raise ConfigurationError(f"{where}: maintenance.retention must map tables to durations")
        for table, spec in raw["retention"].items():
            rules = _retention_rules(str(table), spec, f"{where}: maintenance.retention.{table}")
            if rules:
                retention[str(table)] = rules
            else:
                retention.pop(str(table), None)
    return MaintenancePolicy(
        retention=retention,
        compress_after=compress_after,
        compress_tables=compress_tables,
        cold=_cold(raw.get("cold"), where),
    )


def _cold(value: Any, where: str) -> dict[str, str]:
    """`cold: <location>` (every table) or `cold: {table: location}`; a relative folder stays relative to the
    working directory, like the landing folder."""
    if value is None:
        return {}
    if isinstance(value, str) and value.strip():
        return {ALL_INTERVALS: value.strip()}
    if not isinstance(value, Mapping):
        raise ConfigurationError(f"{where}: maintenance.cold takes a folder / URL, or a mapping table -> one")
    out: dict[str, str] = {}
    for table, location in value.items():
        if str(table) != ALL_INTERVALS and str(table) not in TIMESERIES:
            known = ", ".join(sorted(TIMESERIES))
            raise ConfigurationError(f"{where}: maintenance.cold.{table}: not a time-series table ({known})")
        if not isinstance(location, str) or not location.strip():
            raise ConfigurationError(f"{where}: maintenance.cold.{table}: expected a folder or an URL")
        out[str(table)] = location.strip()
    return out


def _retention_rules(table: str, spec: Any, where: str) -> dict[str, timedelta]:
    if table in AGGREGATES:
        raise ConfigurationError(f"{where}: the aggregates are kept forever (they replace expired candles)")
    if table not in TIMESERIES:
        known = ", ".join(sorted(TIMESERIES))
        raise ConfigurationError(f"{where}: {table!r} is not a time-series table (known: {known})")
    if isinstance(spec, Mapping):
        if table not in PER_INTERVAL_TABLES:
            raise ConfigurationError(f"{where}: per-interval retention exists only for {PER_INTERVAL_TABLES}")
        rules: dict[str, timedelta] = {}
        for interval, value in spec.items():
            interval = str(interval)
            if interval != ALL_INTERVALS:
                try:
                    validate_interval(interval)
                except IntervalError as exc:
                    raise ConfigurationError(f"{where}: {exc}") from None
            age = _duration(value, f"{where}.{interval}")
            if age is not None:
                rules[interval] = age
        return rules
    age = _duration(spec, where)
    return {} if age is None else {ALL_INTERVALS: age}


def _duration(value: Any, where: str) -> timedelta | None:
    if value is None or (isinstance(value, str) and value.strip().lower() == "forever"):
        return FOREVER
    try:
        delta = interval_to_timedelta(str(value).strip())
    except IntervalError as exc:
        raise ConfigurationError(f"{where}: {exc} (or `forever`)") from None
    return delta


def _tables(value: Any, where: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigurationError(f"{where}: expected a list of table names")
    unknown = [v for v in value if v not in COMPRESSIBLE_TABLES]
    if unknown:
        raise ConfigurationError(
            f"{where}: no columnstore settings for {', '.join(unknown)} "
            f"(tables with settings: {', '.join(COMPRESSIBLE_TABLES)})"
        )
    return tuple(value)
