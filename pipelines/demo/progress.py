"""Progress lines while the demo runs: a Dagster logger turning the runs' events into one line per step and
check (Dagster's own console logger is silenced)."""

from __future__ import annotations

import logging
import time
from collections import Counter

import dagster as dg

from market_warehouse.pipelines.demo.report import CheckOutcome, DemoReport, Echo, StepFailure
from market_warehouse.pipelines.retries import root_error


def _meta_value(metadata, name: str):
    value = metadata.get(name)
    return getattr(value, "value", value)


def _written(metadata) -> int | None:
    """Rows this materialization inserted or updated, from whichever convention the asset reports."""
    if "rows_written" in metadata:
        return int(_meta_value(metadata, "rows_written") or 0)
    parts = [_meta_value(metadata, k) for k in ("rows_inserted", "rows_updated")]
    if any(p is not None for p in parts):
        return sum(int(p or 0) for p in parts)
    return None


class Progress(logging.Handler):
    """Receives every Dagster event of the run (they are log records) and echoes one line per step."""

    def __init__(self, echo: Echo, report: DemoReport, quiet: bool):
        super().__init__(logging.DEBUG)
        self.echo, self.report, self.quiet = echo, report, quiet
        self.started: dict[str, float] = {}
        self.step_written: dict[str, dict[str, int]] = {}
        self.step_checks: dict[str, list[CheckOutcome]] = {}
        self.run_written: Counter = Counter()

    def emit(self, record: logging.LogRecord) -> None:
        meta = getattr(record, "dagster_meta", None) or {}
        event = meta.get("dagster_event")
        try:
            if event is not None:
                self._handle(event)
            elif record.levelno >= logging.ERROR:
                step = meta.get("step_key") or ""
                self._say(f"  error {step}: {meta.get('orig_message') or record.getMessage()}")
        except Exception:  # progress must never break a run
            logging.getLogger(__name__).debug("progress line failed", exc_info=True)

    def _say(self, line: str) -> None:
        if not self.quiet:
            self.echo(line)

    def _handle(self, event: dg.DagsterEvent) -> None:
        kind, step = event.event_type, event.step_key or ""
        if kind == dg.DagsterEventType.STEP_START:
            self.started[step] = time.perf_counter()
        elif kind == dg.DagsterEventType.ASSET_MATERIALIZATION:
            mat = event.event_specific_data.materialization
            name = mat.asset_key.to_user_string()
            written = _written(mat.metadata)
            # A range run reports one materialization per partition, each with its own day's counts.
            seen = self.step_written.setdefault(step, {})
            if written is not None:
                seen[name] = seen.get(name, 0) + written
                self.report.rows_written[name] += written
                self.run_written[name] += written
        elif kind == dg.DagsterEventType.ASSET_CHECK_EVALUATION:
            evaluation = event.event_specific_data
            failed_rules = _meta_value(evaluation.metadata, "failed_rules")
            description = evaluation.description or ""
            if not evaluation.passed and failed_rules and failed_rules != "none":
                description = f"{description}; failing: {failed_rules}"
            outcome = CheckOutcome(
                asset=evaluation.asset_key.to_user_string(),
                name=evaluation.check_name,
                passed=bool(evaluation.passed),
                severity=getattr(evaluation.severity, "value", str(evaluation.severity)),
                description=description,
                partition=evaluation.partition,
            )
            self.report.checks.append(outcome)
            self.step_checks.setdefault(step, []).append(outcome)
        elif kind == dg.DagsterEventType.STEP_SUCCESS:
            self._say(self._step_line(step))
        elif kind == dg.DagsterEventType.STEP_FAILURE:
            error = event.event_specific_data.error
            message = str(root_error(error)) if error else "failed"
            self.report.failures.append(StepFailure(step, message))
            self._say(f"  FAIL  {step}: {message}")
        elif kind == dg.DagsterEventType.STEP_UP_FOR_RETRY:
            data = event.event_specific_data
            wait = f" in {data.seconds_to_wait:.1f}s" if data.seconds_to_wait is not None else ""
            cause = f": {root_error(data.error)}" if data.error else ""
            self._say(f"  retry {step}{wait}{cause}")
        elif kind == dg.DagsterEventType.STEP_SKIPPED:
            self._say(f"  skip  {step} (an upstream step or a blocking check failed)")

    def _step_line(self, step: str) -> str:
        seconds = time.perf_counter() - self.started.get(step, time.perf_counter())
        checks = self.step_checks.get(step)
        if checks:
            return "\n".join(
                f"  check {'ok  ' if c.passed else c.severity.lower():<5} {c.asset}: {c.name}"
                + (f" [{c.partition}]" if c.partition else "")
                + ("" if c.passed else f" — {c.description}")
                for c in checks
            )
        written = self.step_written.get(step, {})
        detail = f"  {sum(written.values()):>9,} rows written" if written else ""
        return f"  done  {step:<34} {seconds:6.1f}s{detail}"


def progress_logger(handler: Progress) -> dg.LoggerDefinition:
    @dg.logger(description="One line per step and check of the demo runs.")
    def demo_progress(_init_context) -> logging.Logger:
        log = logging.getLogger("market_warehouse.demo.progress")
        log.setLevel(logging.DEBUG)
        log.propagate = False
        log.handlers = [handler]
        return log

    return demo_progress


def quiet_run_config() -> dict:
    # Dagster's console logger only for critical messages; our logger turns events into progress lines.
    return {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}, "demo_progress": {}}}
