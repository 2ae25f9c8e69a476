"""Jobs: plain functions with typed reports, called by the CLI, the DAGs and the API alike."""
