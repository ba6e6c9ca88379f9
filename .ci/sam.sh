#!/usr/bin/env bash
# Runs the SAM CLI: the one on PATH, else aws-sam-cli from PyPI installed
# once into .cache/sam (a virtualenv, so it cannot clash with other Python
# packages).
set -euo pipefail
cd "$(dirname "$0")/.."
SAM_VERSION=1.170.0

if command -v sam >/dev/null; then
  sam=sam
else
  sam=.cache/sam/bin/sam
  if [ ! -x "$sam" ]; then
    echo "installing aws-sam-cli $SAM_VERSION into .cache/sam"
    python3 -m venv .cache/sam
    .cache/sam/bin/pip install -q --disable-pip-version-check "aws-sam-cli==$SAM_VERSION"
  fi
fi
export SAM_CLI_TELEMETRY=0
exec "$sam" "$@"
