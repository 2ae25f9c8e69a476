"""The commands of the ``volforecast`` command line, one module per group."""
