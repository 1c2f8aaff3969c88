#!/usr/bin/env bash
# Renders a LangTune report.html with headless Chromium into a PNG screenshot, so a report can be
# checked as people see it (charts drawn, text legible, CJK and Turkish glyphs present).
# Usage: scripts/render-report.sh REPORT.html [OUT.png] [HEIGHT]
# Installs Debian's chromium and Noto CJK fonts when they are missing (needs root or sudo).
set -euo pipefail
report=$(realpath "$1")
out=${2:-${report%.html}.png}
height=${3:-2600}
sudo_cmd=""; [ "$(id -u)" != 0 ] && sudo_cmd="sudo"
if ! command -v chromium >/dev/null 2>&1 || ! fc-list 2>/dev/null | grep -qi "Noto Sans CJK"; then
  $sudo_cmd apt-get update -qq && $sudo_cmd apt-get install -y -qq chromium fonts-noto-cjk >/dev/null
fi
chromium --headless --no-sandbox --disable-gpu --hide-scrollbars --window-size=1200,"$height" \
  --screenshot="$out" "file://$report" 2>/dev/null
test -s "$out" || { echo "render-report: no screenshot written for $report" >&2; exit 1; }
echo "$out"
