-- The MLflow and Airflow databases beside volforecast's own (created by the image's env).
CREATE DATABASE mlflow;
CREATE DATABASE airflow;
