"""The pooled LSTM: its settings, network, training windows, training loop, model and panel.

``config`` imports no torch (the CLI's help and the backtest read the settings cheaply); the
other modules do.
"""
