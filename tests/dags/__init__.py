"""The Airflow DAGs, run by the Airflow environment (``.venv-airflow``)."""
