"""Models of every warehouse table; importing this package fills `Base.metadata` and `TIMESERIES`."""

from .analytics import BacktestResult, Feature, Forecast, MlModel
from .base import TIMESERIES, Base, TimeseriesSpec
from .market import (
    MarketCalendar,
    MarketMetric,
    MarketTrade,
    Ohlcv,
    OrderbookSnapshot,
    Source,
    TimeIndex,
    TimeseriesPoint,
)
from .operations import AuditReportLog, ColdPiece, Coverage, IngestFile, IterationLog, Lineage, SystemEvent
from .quality import Anomaly, AuditLog, Quarantine, TimeseriesArchive, ValidationRule
from .trading import (
    AgentDecision,
    BotTrade,
    EquityCurve,
    Position,
    RiskMetric,
    TradeHistory,
    TradingSignal,
)

__all__ = [
    "TIMESERIES",
    "AgentDecision",
    "Anomaly",
    "AuditLog",
    "AuditReportLog",
    "BacktestResult",
    "Base",
    "BotTrade",
    "ColdPiece",
    "Coverage",
    "EquityCurve",
    "Feature",
    "Forecast",
    "IngestFile",
    "IterationLog",
    "Lineage",
    "MarketCalendar",
    "MarketMetric",
    "MarketTrade",
    "MlModel",
    "Ohlcv",
    "OrderbookSnapshot",
    "Position",
    "Quarantine",
    "RiskMetric",
    "Source",
    "SystemEvent",
    "TimeIndex",
    "TimeseriesArchive",
    "TimeseriesPoint",
    "TimeseriesSpec",
    "TradeHistory",
    "TradingSignal",
    "ValidationRule",
]
