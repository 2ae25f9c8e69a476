#!/usr/bin/env bash
# A headless Chromium screenshot of the dashboard's Volatility Forecast tab, taken once its
# chart has drawn (docs/screenshot_page.py waits through Chromium's DevTools protocol).
# Usage: screenshot.sh DASHBOARD_URL OUTPUT.png
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
# The tab is bound to ?tab=, the ticker to ?ticker=.
"$repo/.venv/bin/python" "$repo/docs/screenshot_page.py" \
  "$1/?tab=Volatility+Forecast&ticker=%5EGSPC" "$2" --size 1400,1100 \
  --wait-for '[data-testid="stPlotlyChart"]' --timeout "${SCREENSHOT_TIMEOUT_S:-180}"
test -s "$2"
