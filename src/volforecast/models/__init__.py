"""Volatility models behind one contract (:mod:`volforecast.models.base`)."""
