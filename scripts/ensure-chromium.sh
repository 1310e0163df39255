#!/usr/bin/env bash
# The reconciliation report is checked in headless Chromium (Debian's package). Install it when missing
# and we may; otherwise the browser test skips and says why.
set -uo pipefail
if command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing Debian's chromium for the report test"
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
    || echo "chromium could not be installed; the browser test will skip" >&2
else
  echo "chromium not found and cannot be installed here; the browser test will skip" >&2
fi
exit 0
