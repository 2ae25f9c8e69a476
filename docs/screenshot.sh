#!/usr/bin/env bash
# Re-create docs/dashboard-volatility-forecast.png and docs/dashboard-model-card.png from
# real state:
#   1. a temporary home with the bundled sample, every default family trained, paths and
#      risk figures stored;
#   2. the prediction API (`volforecast serve`) and the dashboard started in the background;
#   3. headless Chromium screenshots, taken by docs/screenshot_page.py once each page has
#      drawn: the first tab ("Volatility Forecast": paths, VaR bands and the served VaR with
#      its breaches) and the model registry's card (term structure, news impact);
#   4. both servers stopped, whatever happened.
# Run from anywhere: docs/screenshot.sh. Environment: VF_HOME (default /tmp/vf-dash, reused
# when already built), API_PORT (8765), DASH_PORT (8501), OUT (the first PNG), CARD_OUT (the
# second).
set -euo pipefail
cd "$(dirname "$0")/.."

BIN=${BIN:-.venv/bin}
VF_HOME=${VF_HOME:-/tmp/vf-dash}
API_PORT=${API_PORT:-8765}
DASH_PORT=${DASH_PORT:-8501}
OUT=${OUT:-docs/dashboard-volatility-forecast.png}
CARD_OUT=${CARD_OUT:-docs/dashboard-model-card.png}

# Only the temporary home counts: no database or tracking server from the caller's shell.
unset VOLFORECAST_DATABASE_URL VOLFORECAST_MLFLOW_TRACKING_URI VOLFORECAST_API__API_KEY
export VOLFORECAST_HOME=$VF_HOME
export VOLFORECAST_DASHBOARD__API_URL=http://127.0.0.1:$API_PORT
export MLFLOW_DISABLE_TELEMETRY=true

if [ ! -f "$VF_HOME/.screenshot-state" ]; then
    # Models trained on the prices up to June 2018, as `make run` trains them; the rest of
    # the year arrives afterwards, is forecast day by day and monitored, so every tab has
    # real rows to show.
    mkdir -p "$VF_HOME"
    "$BIN/python" -c "
from volforecast.data.sources import load_sample
frame = load_sample().frame
frame[frame['date'] <= '2018-06-29'].to_parquet('$VF_HOME/until-june.parquet')
"
    "$BIN/volforecast" db upgrade
    "$BIN/volforecast" ingest --file "$VF_HOME/until-june.parquet"
    "$BIN/volforecast" train --all
    "$BIN/volforecast" ingest --sample
    # Each evening of December's last 20 trading days, as the daily job would have run
    # (`volforecast predict --all --as-of DAY`, with the models loaded once).
    "$BIN/python" -c "
import pandas as pd
from volforecast.data.db import create_db_engine
from volforecast.jobs.predict_daily import predict_all
from volforecast.registry.serving import ProductionModels
from volforecast.registry.tracking import connect
from volforecast.settings import get_settings
settings = get_settings()
engine = create_db_engine(settings)
models = ProductionModels(connect(settings))
models.refresh()
for day in pd.bdate_range('2018-11-30', '2018-12-31'):
    predict_all(engine, settings, models, as_of=day.date())
"
    "$BIN/volforecast" monitor run --all || [ $? -eq 3 ]
    touch "$VF_HOME/.screenshot-state"
fi

pids=()
stop_servers() {
    for pid in "${pids[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
}
trap stop_servers EXIT

wait_for() {
    for _ in $(seq 1 120); do
        if curl -fsS -o /dev/null "$1" 2>/dev/null; then return 0; fi
        sleep 1
    done
    echo "$1 did not answer in 120 s; see $VF_HOME/*.log" >&2
    return 1
}

"$BIN/volforecast" serve --port "$API_PORT" >"$VF_HOME/serve.log" 2>&1 &
pids+=($!)
# The same command line `volforecast dashboard` runs (volforecast.dashboard.streamlit_command).
"$BIN/python" -c "
import os, sys
from volforecast.dashboard import streamlit_command
argv = streamlit_command(port=$DASH_PORT, address='127.0.0.1')
os.execv(argv[0], argv)
" >"$VF_HOME/dashboard.log" 2>&1 &
pids+=($!)

wait_for "http://127.0.0.1:$API_PORT/health"
wait_for "http://127.0.0.1:$DASH_PORT/_stcore/health"

mkdir -p "$(dirname "$OUT")"
# Not `chromium --screenshot --virtual-time-budget=...`: Streamlit draws over a websocket once
# the script has run on the server, which virtual time does not wait for, so that shot shows
# the loading skeleton. The helper drives the same headless Chromium over its DevTools port and
# waits until the chart and the forecast table are drawn and the script has stopped running.
"$BIN/python" docs/screenshot_page.py "http://127.0.0.1:$DASH_PORT/" "$OUT" --size 1400,1750 \
    --wait-for '.js-plotly-plot' --wait-for '[data-testid="stDataFrame"]' --timeout 180
# The card of ^GSPC's GJR-GARCH-t: a model with a news-impact curve.
"$BIN/python" docs/screenshot_page.py \
    "http://127.0.0.1:$DASH_PORT/?tab=Model+registry&card=gjr_garch_t_volatility_gspc" \
    "$CARD_OUT" --size 1400,1900 --wait-for '.js-plotly-plot' --timeout 180
