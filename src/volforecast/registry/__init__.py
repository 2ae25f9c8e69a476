"""The MLflow side of the lifecycle: tracking runs, pyfunc models, the registry and promotion."""
