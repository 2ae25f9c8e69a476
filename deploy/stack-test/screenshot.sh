#!/usr/bin/env bash
# A headless Chromium screenshot of the dashboard's Volatility Forecast tab.
# Usage: screenshot.sh DASHBOARD_URL OUTPUT.png
set -euo pipefail
url=$1
out=$2
# The tab is bound to ?tab=; the virtual-time budget lets Streamlit's script run and render.
chromium --headless=new --no-sandbox --disable-gpu --hide-scrollbars --window-size=1400,1100 \
  --virtual-time-budget="${SCREENSHOT_WAIT_MS:-45000}" --screenshot="$out" \
  "$url/?tab=Volatility+Forecast&ticker=%5EGSPC" > /dev/null 2>&1
test -s "$out"
