"""Exchanges: the configured universe, ccxt pulls, the synthetic offline exchange, coverage and gaps.

Plain Python (no Dagster): a script or a trading bot can pull and load the same way the pipelines do.
"""
