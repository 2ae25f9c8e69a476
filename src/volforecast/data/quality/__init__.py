"""The data-quality gate: which price rows may enter the store, and why the others may not.

The gate runs on every ingest and on stored prices before training. It never repairs a
value; it rejects and says why, per ticker, with counts and examples. Checks come in three
kinds:

* **what the source could not read** (:attr:`~volforecast.data.sources.PriceBatch.unreadable`):
  ``nan`` or ``inf`` written as a price, text that is no number, a date not in the column's
  format or outside what a timestamp holds. The row is rejected.
* **row checks** (a pandera schema): missing, non-finite or non-positive values, high below
  low, open or close outside [low, high], malformed ticker symbols. The row is rejected.
* **dates**: a day that is not an NYSE session (a weekend, a holiday, a day the exchange was
  closed), or one after the last session the calendar knows. The row is rejected.
* **duplicates**: several rows for one ticker and date. Identical copies collapse to one;
  conflicting copies are all rejected, since nothing says which is right.
* **series checks**, on what is left, in date order:

  - *spikes*: a move of at least ``spike_min_return_pct`` that the next day undoes within
    ``spike_reversal_tolerance``; the one bad print is rejected;
  - *stale prices*: the same close on ``stale_days`` or more consecutive rows; the repeats
    are rejected (forward-filled data would fake zero volatility);
  - *series breaks*: a gap of more than ``max_gap_trading_days`` missing NYSE sessions, a
    move beyond ``max_abs_return_pct`` that stays, or a split (``split_coefficient``) that the
    adjusted close does not reflect. Returns across a break are meaningless, so every row
    before the last break is rejected and the most recent consistent history is kept.

The gate is idempotent: the rows it accepts pass it again unchanged.
"""
