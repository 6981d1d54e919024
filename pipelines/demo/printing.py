"""The summary the demo prints at the end: rows per table, quarantine, failures, checks, backend, next steps."""

from __future__ import annotations

from market_warehouse.pipelines.demo.report import DemoReport, Echo


def print_summary(report: DemoReport, echo: Echo) -> None:
    echo("")
    echo(f"Summary — window {report.window[0]} .. {report.window[1]} (UTC), {report.seconds:.0f}s")
    echo("")
    echo(f"  {'table':<24} {'rows':>10}")
    for name, count in sorted(report.table_rows.items()):
        if count:
            echo(f"  {name:<24} {count:>10,}")
    empty = sorted(n for n, c in report.table_rows.items() if not c)
    if empty:
        echo(f"  (empty: {', '.join(empty)})")
    echo("")
    if report.quarantine:
        echo("  quarantined rows (unreleased), by rule:")
        for table, rule, source, count in report.quarantine:
            echo(f"    {count:>5}  {table}.{rule:<22} {source}")
        echo("    -> market-warehouse quarantine list / release")
    else:
        echo("  quarantined rows: none")
    for path, error in report.failed_files:
        echo(f"  failed file: {error or path}")
    for failure in report.failures:
        echo(f"  failed step: {failure.step}: {failure.error}")
    echo("")
    passed = sum(c.passed for c in report.checks)
    echo(f"  asset checks: {passed} passed, {len(report.checks) - passed} failed")
    for check in report.checks:
        if not check.passed:
            day = f" [{check.partition}]" if check.partition else ""
            echo(f"    FAILED ({check.severity}) {check.asset}: {check.name}{day} — {check.description}")
    echo("")
    caps = report.capabilities
    flags = ("hypertables", "native_partitions", "compression", "continuous_aggregates")
    echo(
        f"  backend: {caps.get('backend')} (PostgreSQL {caps.get('server_version')}); "
        + ", ".join(f"{f}={'yes' if caps.get(f) else 'no'}" for f in flags)
    )
    echo(f"  rows written by this run: {report.total_written:,} (a re-run writes 0)")
    echo("")
    echo("  next: market-warehouse ui       the runs, asset graph, checks and plots in the Dagster UI")
    echo("        market-warehouse db info  every table: kind, rows, size, chunks/partitions, time range")
