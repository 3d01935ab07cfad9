#!/usr/bin/env bash
# Builds the dashboard into www/pkg: the Yew app compiled to wasm (release), then wasm-bindgen's
# JS glue for `--target web`, which www/main.js imports. No bundler.
#
# The dashboard talks to the engine through the npm package's worker client, exactly as an
# embedding app does: scripts/build-npm.sh builds the package (into wasm/pkg, skipped when it is
# up to date) and it is copied to www/pkg/strata/, which www/main.js imports.
# Needs the tools from `scripts/setup.sh --serve`.
set -euo pipefail
# shellcheck source=scripts/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
cd "$REPO_ROOT"

version=$(locked_wasm_bindgen_version)
command -v wasm-bindgen >/dev/null && [ "$(wasm-bindgen --version)" = "wasm-bindgen $version" ] ||
  die "wasm-bindgen $version is not installed (Cargo.lock pins it): run scripts/setup.sh --serve"

./scripts/build-npm.sh

log "build-web: cargo build --release --target wasm32-unknown-unknown -p strata-dashboard"
cargo build --release --target wasm32-unknown-unknown -p strata-dashboard

log "build-web: wasm-bindgen --target web --out-dir www/pkg"
rm -rf www/pkg
# Cargo keeps the binary's hyphen (strata-dashboard.wasm); --out-name gives the JS module the
# underscore name that www/main.js imports.
wasm-bindgen --target web --no-typescript --out-dir www/pkg --out-name strata_dashboard \
  target/wasm32-unknown-unknown/release/strata-dashboard.wasm

mkdir -p www/pkg/strata
cp wasm/pkg/*.js wasm/pkg/*.wasm www/pkg/strata/

# The SQLite demo (www/sqlite.html) runs wa-sqlite's Asyncify build from the version
# tests/package-lock.json pins (scripts/setup.sh installs it): its API modules and that one build.
wa_sqlite=tests/node_modules/@journeyapps/wa-sqlite
[ -f "$wa_sqlite/dist/wa-sqlite-async.wasm" ] ||
  die "$wa_sqlite is missing: run scripts/setup.sh (it runs npm ci in tests/)"
mkdir -p www/pkg/wa-sqlite/src www/pkg/wa-sqlite/dist
cp "$wa_sqlite"/src/*.js www/pkg/wa-sqlite/src/
cp "$wa_sqlite"/dist/wa-sqlite-async.mjs "$wa_sqlite"/dist/wa-sqlite-async.wasm www/pkg/wa-sqlite/dist/

log "build-web: done: $(du -h www/pkg/strata_dashboard_bg.wasm | cut -f1) of dashboard wasm," \
  "$(du -h www/pkg/strata/strata_wasm_bg.wasm | cut -f1) of engine wasm in www/pkg"
