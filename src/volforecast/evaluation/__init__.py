"""Evaluation: losses over horizons, statistical tests, and the walk-forward backtest."""
