"""The prediction service: ``create_app()`` builds it, ``volforecast serve`` runs it."""
