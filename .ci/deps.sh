#!/usr/bin/env bash
# Installs what `make test` needs and the machine lacks. Only ever installs
# with apt-get as root on Debian; elsewhere it says what to install.
set -euo pipefail

need=()
command -v java >/dev/null || need+=(openjdk-17-jre-headless)
command -v mvn >/dev/null || need+=(maven)
[ ${#need[@]} -eq 0 ] && exit 0

if [ -n "${DYNAMODB_ENDPOINT:-}" ]; then
  exit 0 # a DynamoDB Local is already running; Java and Maven are not needed
fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "installing ${need[*]} (for DynamoDB Local)"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
else
  echo "the tests need ${need[*]} for DynamoDB Local: install them, or set DYNAMODB_ENDPOINT to a running one" >&2
  exit 1
fi
