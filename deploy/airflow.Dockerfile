# Airflow 3.3 with volforecast beside it: Airflow keeps its own environment (its pins are
# older than volforecast's) and the DAGs run volforecast's command line from /opt/volforecast.
FROM apache/airflow:3.3.2-python3.11

USER root
RUN python -m venv /opt/volforecast/.venv && chown -R airflow: /opt/volforecast
USER airflow

RUN /opt/volforecast/.venv/bin/pip install --no-cache-dir "torch==2.13.0" \
        --index-url https://download.pytorch.org/whl/cpu
COPY --chown=airflow pyproject.toml README.md LICENSE /opt/volforecast/src-root/
COPY --chown=airflow src /opt/volforecast/src-root/src
RUN /opt/volforecast/.venv/bin/pip install --no-cache-dir /opt/volforecast/src-root

COPY --chown=airflow dags /opt/airflow/dags
ENV VOLFORECAST_BIN=/opt/volforecast/.venv/bin/volforecast \
    MLFLOW_DISABLE_TELEMETRY=true
