#!/usr/bin/env bash
# Validates docker-compose.yml with a compose CLI that needs no Docker engine: the `docker compose` plugin where it
# exists, else Debian's docker-compose (installed here with apt-get when missing and when run as root).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

if docker compose version > /dev/null 2>&1; then
  compose=(docker compose)
else
  if ! command -v docker-compose > /dev/null 2>&1; then
    if [[ $(id -u) -ne 0 ]]; then
      echo "check-compose: neither 'docker compose' nor 'docker-compose' is installed (apt-get install docker-compose)" >&2
      exit 1
    fi
    echo "check-compose: installing Debian's docker-compose" >&2
    apt-get update -qq > /dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker-compose > /dev/null
  fi
  compose=(docker-compose)
fi
"${compose[@]}" -f docker-compose.yml config -q
echo "check-compose: docker-compose.yml is valid (${compose[*]})"
