"""The dashboard's tabs, one module each; :mod:`volforecast.dashboard.page` has what they share."""
