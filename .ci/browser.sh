#!/usr/bin/env bash
# The page's tests in real headless Chromium against the local stack.
# Installs Chromium with apt-get when run as root on Debian and it is
# missing; elsewhere uses CHROME_PATH or says how to get one.
set -euo pipefail
cd "$(dirname "$0")/.."

chrome="${CHROME_PATH:-/usr/bin/chromium}"
if [ ! -x "$chrome" ]; then
  if [ -z "${CHROME_PATH:-}" ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "installing Chromium for the browser tests"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    echo "the browser tests need Chromium: install it (Debian: apt-get install chromium) or set CHROME_PATH to a Chrome or Chromium binary" >&2
    exit 1
  fi
fi
command -v node >/dev/null || { echo "the browser tests need Node.js 20 or later" >&2; exit 1; }

npm ci --prefix test/browser --no-audit --no-fund --silent
go build -o bin/localgw ./cmd/localgw
cd test/browser
CHROME_PATH="$chrome" node --test --test-concurrency=1 .
