"""The dashboard's tabs, one module each; every tab draws from a shared :class:`~.Context`."""
