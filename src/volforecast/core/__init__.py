"""Pure functions, no I/O: returns, realized-variance estimators, losses, trading calendar.

One exception, shared by ``evaluation/`` and ``jobs/``: :mod:`volforecast.core.parallel`, the
initializer that limits a worker process's BLAS threads.

Units follow one rule: returns are percent log returns (``returns_pct``), variances are in
percent squared per day (``sigma2``), volatilities in percent per day (``vol_pct``).
"""
