"""Monitoring: forecast accuracy against realized volatility, drift detectors, alerts."""
