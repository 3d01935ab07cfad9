#!/usr/bin/env bash
# README command 1: installs what serving needs (if missing), builds the dashboard and serves www/
# on http://127.0.0.1:${PORT:-8080}/ until interrupted.
set -euo pipefail
# shellcheck source=scripts/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
cd "$REPO_ROOT"

port="${PORT:-8080}"
./scripts/setup.sh --serve
./scripts/build-web.sh

log "serve: open http://127.0.0.1:$port/ (Ctrl-C to stop)"
exec python3 scripts/serve.py --bind 127.0.0.1 --port "$port" --directory www
