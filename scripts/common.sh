# shellcheck shell=bash
# Shared by the scripts in this folder (sourced, not run): the repository root, logging, timing.
# Nothing here installs or builds anything.

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export REPO_ROOT

# `cargo install` puts binaries here; a fresh shell on a new machine may not have it on PATH.
CARGO_BIN_DIR="${CARGO_HOME:-$HOME/.cargo}/bin"
case ":$PATH:" in
  *":$CARGO_BIN_DIR:"*) ;;
  *) export PATH="$CARGO_BIN_DIR:$PATH" ;;
esac

export CHROMIUM_BIN=/usr/bin/chromium
export CHROMEDRIVER_BIN=/usr/bin/chromedriver

log() {
  printf '==> %s\n' "$*"
}

die() {
  printf 'error: %s\n' "$*" >&2
  exit 1
}

# Milliseconds since the epoch.
now_ms() {
  date +%s%3N
}

# Formats a duration in milliseconds as seconds with one decimal, e.g. `12.3s`.
format_ms() {
  local ms=$1
  printf '%d.%ds' $((ms / 1000)) $(((ms % 1000) / 100))
}

# The wasm-pack that scripts/build-npm.sh builds the npm package with (scripts/setup.sh installs it
# from crates.io; with `--mode no-install` it uses the wasm-bindgen CLI below and installs nothing).
export WASM_PACK_VERSION=0.15.1

# The exact wasm-bindgen version that Cargo.lock resolved. The CLI must match it byte for byte,
# so it is read from the lock file rather than written down a second time.
locked_wasm_bindgen_version() {
  local lock="$REPO_ROOT/Cargo.lock"
  [ -f "$lock" ] || die "Cargo.lock not found at $lock"
  awk '
    $0 == "name = \"wasm-bindgen\"" { in_package = 1; next }
    in_package && $1 == "version" { gsub(/"/, "", $3); print $3; exit }
    /^\[\[package\]\]/ { in_package = 0 }
  ' "$lock"
}
