# Airflow 3.3 with volforecast beside it: Airflow keeps its own environment (its pins are
# older than volforecast's) and the DAGs run volforecast's command line from /opt/volforecast.
# The base image and torch's source are build arguments, as in deploy/Dockerfile.
ARG AIRFLOW_IMAGE=apache/airflow:3.3.2-python3.11
FROM ${AIRFLOW_IMAGE}

USER root
RUN python -m venv /opt/volforecast/.venv && chown -R airflow: /opt/volforecast
USER airflow

ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
ARG TORCH_FIND_LINKS=
RUN /opt/volforecast/.venv/bin/pip install --no-cache-dir "torch==2.13.0+cpu" \
        --index-url "$TORCH_INDEX_URL" ${TORCH_FIND_LINKS:+--find-links "$TORCH_FIND_LINKS"}
COPY --chown=airflow pyproject.toml README.md LICENSE /opt/volforecast/src-root/
COPY --chown=airflow src /opt/volforecast/src-root/src
RUN /opt/volforecast/.venv/bin/pip install --no-cache-dir /opt/volforecast/src-root

COPY --chown=airflow dags /opt/airflow/dags
ENV VOLFORECAST_BIN=/opt/volforecast/.venv/bin/volforecast \
    MLFLOW_DISABLE_TELEMETRY=true
