#!/usr/bin/env bash
# Installs what building, serving and testing Strata needs, idempotently: every step first checks
# whether its tool is already there (at the right version) and skips if so, so a second run takes
# a second or two.
#
# Usage: scripts/setup.sh           everything scripts/test.sh needs
#        scripts/setup.sh --serve   only what scripts/serve.sh needs
#
# Sources: rustup (Rust target and components), crates.io (wasm-bindgen-cli, built from source),
# Debian apt (chromium, chromium-driver; node and python3 only if missing), the npm registry
# (tests/package-lock.json: playwright-core, bundlers, axe-core, wa-sqlite). Nothing is downloaded
# from anywhere else; in particular no browser is downloaded by Playwright.
set -euo pipefail
# shellcheck source=scripts/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

mode="test"
case "${1:-}" in
  "") ;;
  --serve) mode=serve ;;
  -h | --help)
    sed -n '2,13p' "$0"
    exit 0
    ;;
  *) die "unknown argument: $1 (expected --serve or nothing)" ;;
esac

step_names=()
step_results=()
apt_updated=0

# Runs `check` and, if it fails, `install`, then records what happened and how long it took.
step() {
  local name=$1 check=$2 install=$3
  local started
  started=$(now_ms)
  local result
  if "$check"; then
    result="present"
  else
    log "setup: installing $name"
    "$install"
    "$check" || die "setup: $name still missing after installing it"
    result="installed"
  fi
  local elapsed
  elapsed=$(format_ms $(($(now_ms) - started)))
  log "setup: $name: $result ($elapsed)"
  step_names+=("$name")
  step_results+=("$result in $elapsed")
}

apt_install() {
  local sudo=()
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || die "apt-get install $* needs root, and sudo is not available"
    sudo=(sudo)
  fi
  if [ "$apt_updated" -eq 0 ]; then
    "${sudo[@]}" apt-get update
    apt_updated=1
  fi
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y "$@"
}

# --- Rust ---------------------------------------------------------------------------------------

if ! command -v cargo >/dev/null || ! command -v rustup >/dev/null; then
  die "cargo and rustup are required: install Rust with rustup (https://rustup.rs) first"
fi

has_wasm_target() {
  rustup target list --installed | grep -qx wasm32-unknown-unknown
}
add_wasm_target() {
  rustup target add wasm32-unknown-unknown
}

has_lint_components() {
  local installed
  installed=$(rustup component list --installed)
  grep -q '^rustfmt' <<<"$installed" && grep -q '^clippy' <<<"$installed"
}
add_lint_components() {
  rustup component add rustfmt clippy
}

WASM_BINDGEN_VERSION=$(locked_wasm_bindgen_version)
[ -n "$WASM_BINDGEN_VERSION" ] || die "no wasm-bindgen package in Cargo.lock"

has_wasm_bindgen_cli() {
  command -v wasm-bindgen >/dev/null && command -v wasm-bindgen-test-runner >/dev/null &&
    [ "$(wasm-bindgen --version)" = "wasm-bindgen $WASM_BINDGEN_VERSION" ] &&
    [ "$(wasm-bindgen-test-runner --version)" = "wasm-bindgen-test-runner $WASM_BINDGEN_VERSION" ]
}
install_wasm_bindgen_cli() {
  # --locked first, for the exact dependency set the CLI was released with. It fails when one of
  # those locked versions has since been yanked from crates.io (0.2.130 locks webpki-roots
  # 1.0.11, which is gone); then build with the newest compatible dependencies instead.
  cargo install wasm-bindgen-cli --version "$WASM_BINDGEN_VERSION" --locked ||
    {
      log "setup: 'cargo install --locked' failed; retrying without --locked"
      cargo install wasm-bindgen-cli --version "$WASM_BINDGEN_VERSION"
    }
}

step "wasm32-unknown-unknown target" has_wasm_target add_wasm_target
if [ "$mode" = test ]; then
  step "rustfmt + clippy" has_lint_components add_lint_components
fi
step "wasm-bindgen-cli $WASM_BINDGEN_VERSION" has_wasm_bindgen_cli install_wasm_bindgen_cli

# wasm-pack builds the npm package (scripts/build-npm.sh, which serve's dashboard build runs too)
# with the wasm-bindgen CLI above (`--mode no-install`). 2.5-4 minutes on 2 cores.
has_wasm_pack() {
  command -v wasm-pack >/dev/null && [ "$(wasm-pack --version)" = "wasm-pack $WASM_PACK_VERSION" ]
}
install_wasm_pack() {
  cargo install wasm-pack --version "$WASM_PACK_VERSION" --locked
}
step "wasm-pack $WASM_PACK_VERSION" has_wasm_pack install_wasm_pack

# --- System packages ----------------------------------------------------------------------------

has_python3() { command -v python3 >/dev/null; }
install_python3() { apt_install python3; }
step "python3" has_python3 install_python3

if [ "$mode" = test ]; then
  has_chromium() { [ -x "$CHROMIUM_BIN" ] && [ -x "$CHROMEDRIVER_BIN" ]; }
  install_chromium() { apt_install chromium chromium-driver; }
  step "chromium + chromium-driver" has_chromium install_chromium

  # The real-client checks build ext4 images (mkfs.ext4, e2fsck) and compare them with qemu-img;
  # the benchmark's peer is qcow2 through qemu-img and qemu-io; `strata serve` is tested with
  # qemu-io, qemu-img, nbdinfo and nbdcopy (libnbd-bin).
  has_fs_tools() {
    { command -v mkfs.ext4 || [ -x /sbin/mkfs.ext4 ] || [ -x /usr/sbin/mkfs.ext4 ]; } >/dev/null &&
      command -v qemu-img >/dev/null && command -v qemu-io >/dev/null &&
      command -v nbdinfo >/dev/null && command -v nbdcopy >/dev/null
  }
  install_fs_tools() { apt_install e2fsprogs qemu-utils libnbd-bin; }
  step "e2fsprogs + qemu-utils + libnbd-bin" has_fs_tools install_fs_tools
fi

# --- Node and npm packages (both modes: the served SQLite demo runs wa-sqlite from npm) ---------

# Node 20.19+ or 22.12+: what vite 8 (the bundler tests) requires, playwright-core needing 20.
# Debian 12's own nodejs is 18, so installing it only helps on newer releases; otherwise say
# plainly what is missing.
node_new_enough() {
  node -e '
    const [major, minor] = process.versions.node.split(".").map(Number);
    process.exit((major === 20 && minor >= 19) || (major === 22 && minor >= 12) || major > 22 ? 0 : 1);
  '
}
has_node() {
  command -v node >/dev/null && command -v npm >/dev/null && node_new_enough
}
install_node() {
  command -v node >/dev/null || apt_install nodejs npm
  command -v npm >/dev/null || apt_install npm
  node_new_enough ||
    die "node $(node --version) is too old: the tests need Node 20.19+ or 22.12+ (vite 8, playwright-core)"
}
step "node (20.19+ or 22.12+) + npm" has_node install_node

# --- npm packages for the end-to-end tests ----------------------------------------------------

# Every devDependency of tests/package.json at its locked version: the tests' playwright-core,
# typescript, vite, esbuild and axe-core, and the wa-sqlite that the SQLite demo (served) runs.
has_test_packages() {
  local tests="$REPO_ROOT/tests"
  node -e '
    const fs = require("fs");
    const dir = process.argv[1];
    const lock = require(dir + "/package-lock.json");
    const wanted = Object.keys(require(dir + "/package.json").devDependencies || {});
    const ok = wanted.every((name) => {
      const file = dir + "/node_modules/" + name + "/package.json";
      const locked = lock.packages["node_modules/" + name];
      return fs.existsSync(file) && locked && require(file).version === locked.version;
    });
    process.exit(ok ? 0 : 1);
  ' "$tests"
}
install_test_packages() {
  # playwright-core never downloads a browser; the variable makes sure nothing else does either.
  # The tests use the apt-installed /usr/bin/chromium.
  (cd "$REPO_ROOT/tests" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund)
}
step "npm packages of tests/ (lock file)" has_test_packages install_test_packages

echo
echo "setup summary ($mode):"
for i in "${!step_names[@]}"; do
  printf '  %-34s %s\n' "${step_names[$i]}" "${step_results[$i]}"
done
