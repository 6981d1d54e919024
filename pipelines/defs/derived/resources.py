"""The `analytics` resource: settings shared by the derived assets (one place, so signals, backtest, equity
and risk agree)."""

from datetime import UTC, datetime

import dagster as dg

from market_warehouse.resources.analytics import features, forecasting, risk, strategy


class AnalyticsResource(dg.ConfigurableResource):
    """Settings shared by the derived assets (one place, so signals, backtest, equity and risk agree)."""

    feature_set: str = features.CORE_V1.name
    forecast_intervals: list[str] = ["1h"]
    forecast_models: list[str] = list(forecasting.MODEL_KINDS)
    forecast_horizon: int = 24
    forecast_training_bars: int = 500
    strategy_name: str = "sma_cross"
    strategy_intervals: list[str] = ["1h"]
    strategy_inception: str = "2024-01-01"  # the book starts trading here; replays start here
    fast: int = 10
    slow: int = 30
    stop_loss: float = 0.02
    take_profit: float = 0.04
    fee_rate: float = 0.001
    slippage_bps: float = 5.0
    initial_capital: float = 10_000.0  # per series traded
    risk_lookback_days: int = 30
    daily_loss_limit: float = 0.05

    def feature_set_def(self) -> features.FeatureSet:
        if self.feature_set not in features.FEATURE_SETS:
            raise dg.Failure(
                f"unknown feature set {self.feature_set!r}: known {sorted(features.FEATURE_SETS)}"
            )
        return features.FEATURE_SETS[self.feature_set]

    def forecast_params(self) -> forecasting.ForecastParams:
        return forecasting.ForecastParams(
            horizon=self.forecast_horizon, training_bars=self.forecast_training_bars
        )

    def strategy_params(self) -> strategy.StrategyParams:
        return strategy.StrategyParams(
            name=self.strategy_name,
            fast=self.fast,
            slow=self.slow,
            stop_loss=self.stop_loss,
            take_profit=self.take_profit,
            fee_rate=self.fee_rate,
            slippage_bps=self.slippage_bps,
            initial_capital=self.initial_capital,
        )

    def risk_params(self) -> risk.RiskParams:
        return risk.RiskParams(lookback_days=self.risk_lookback_days, daily_loss_limit=self.daily_loss_limit)

    def inception(self) -> datetime:
        return datetime.fromisoformat(self.strategy_inception).replace(tzinfo=UTC)
