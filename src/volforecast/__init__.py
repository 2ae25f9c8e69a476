"""volforecast: stock volatility forecasting and its whole model lifecycle."""

__version__ = "0.1.0"
