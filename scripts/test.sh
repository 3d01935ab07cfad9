#!/usr/bin/env bash
# README command 2, and what CI runs (.ci/run): every check, in order, stopping at the first
# failure, then one summary line per stage.
#
#   setup         scripts/setup.sh (installs whatever is missing)
#   fmt           cargo fmt --check
#   clippy        clippy, native, all targets, warnings are errors
#   clippy-wasm   clippy for wasm32 on the browser crates, and on the package's main module
#                 (strata-wasm without its default features: no policy executor)
#   engine-wasm   the engine builds for wasm32, with and without its feature `policies`
#   test-native   cargo test --workspace
#   test-browser  wasm-bindgen tests of strata-wasm in headless Chromium (OPFS, IndexedDB)
#   build-web     scripts/build-web.sh
#   test-e2e      the dashboard in headless Chromium via Playwright (node --test)
#   test-npm      scripts/build-npm.sh, then the packed npm package installed into a scratch app
#                 and driven in headless Chromium (tests/npm/)
set -euo pipefail
# shellcheck source=scripts/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
cd "$REPO_ROOT"

STAGES=(setup fmt clippy clippy-wasm engine-wasm test-native test-browser build-web test-e2e test-npm)
declare -A stage_result=()
current_stage=""
stage_started_ms=0
run_started_ms=$(now_ms)

# Chromium and chromedriver leave profile folders in TMPDIR: give them one this script removes.
TEST_TMPDIR="$REPO_ROOT/.tmp"
rm -rf "$TEST_TMPDIR"
mkdir -p "$TEST_TMPDIR"
export TMPDIR="$TEST_TMPDIR"

on_exit() {
  local status=$?
  if [ -n "$current_stage" ]; then
    stage_result[$current_stage]="FAILED (exit $status) after $(format_ms $(($(now_ms) - stage_started_ms)))"
  fi
  rm -rf "$TEST_TMPDIR"
  echo
  echo "test summary:"
  local stage
  for stage in "${STAGES[@]}"; do
    printf '  %-13s %s\n' "$stage" "${stage_result[$stage]:-not run}"
  done
  local verdict=PASSED
  [ "$status" -eq 0 ] || verdict=FAILED
  echo "  total         $verdict in $(format_ms $(($(now_ms) - run_started_ms)))"
  exit "$status"
}
trap on_exit EXIT

# Runs one stage. A failing command ends the script (set -e); on_exit then marks the stage.
run_stage() {
  current_stage=$1
  shift
  stage_started_ms=$(now_ms)
  echo
  log "[$current_stage] $*"
  "$@"
  stage_result[$current_stage]="ok in $(format_ms $(($(now_ms) - stage_started_ms)))"
  current_stage=""
}

run_stage setup ./scripts/setup.sh
run_stage fmt cargo fmt --all -- --check
run_stage clippy cargo clippy --workspace --all-targets -- -D warnings
# The second command: the npm package's main module, built without the policy executor.
run_stage clippy-wasm bash -c 'cargo clippy -p strata-wasm -p strata-dashboard \
  --target wasm32-unknown-unknown --all-targets -- -D warnings &&
  cargo clippy -p strata-wasm --target wasm32-unknown-unknown --no-default-features -- -D warnings'
run_stage engine-wasm bash -c 'cargo check -p strata-engine --target wasm32-unknown-unknown &&
  cargo check -p strata-engine --target wasm32-unknown-unknown --no-default-features'
# Every crate builds natively; the browser-only tests (wasm/tests/) compile to nothing there.
run_stage test-native cargo test --workspace
# The runner reads wasm/webdriver.json (Chromium flags) from the crate folder, cargo's working
# directory for tests; it never downloads a driver when CHROMEDRIVER is set.
run_stage test-browser env CHROMEDRIVER="$CHROMEDRIVER_BIN" WASM_BINDGEN_TEST_TIMEOUT=120 \
  cargo test --target wasm32-unknown-unknown -p strata-wasm
run_stage build-web ./scripts/build-web.sh
run_stage test-e2e node --test tests/e2e/
run_stage test-npm bash -c './scripts/build-npm.sh && node --test tests/npm/'
