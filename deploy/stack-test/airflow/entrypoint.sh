#!/usr/bin/env bash
# The official image's contract, written afresh: wait for the metadata database, run
# `bash ...` and `python ...` as given, and anything else as an `airflow` sub-command
# (`airflow scheduler` and `scheduler` alike).
set -euo pipefail
umask 0002
tries=${CONNECTION_CHECK_MAX_COUNT:-20}
if [ "$tries" -gt 0 ]; then
  for ((i = 1; ; i++)); do
    airflow db check > /dev/null 2>&1 && break
    if [ "$i" -ge "$tries" ]; then
      echo "error: the metadata database did not answer after $tries tries" >&2
      airflow db check
      exit 1
    fi
    sleep "${CONNECTION_CHECK_SLEEP_TIME:-3}"
  done
fi
case "${1:-}" in
  bash) shift; exec /bin/bash "$@" ;;
  python) shift; exec python "$@" ;;
  airflow) shift ;;
esac
exec airflow "$@"
