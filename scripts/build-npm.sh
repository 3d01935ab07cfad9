#!/usr/bin/env bash
# Builds the npm package `strata-engine` into wasm/pkg (or the folder given as $1): the
# strata-wasm crate compiled to wasm (release), wasm-bindgen's JS glue for `--target web`, the
# worker and Promise client from wasm/js/, wasm/README.md and a package.json. Then prints the
# gzipped size of the main .wasm against the 250 KiB target, and fails above a hard ceiling
# (STRATA_WASM_GZ_LIMIT_BYTES, default 260 KiB) that catches a size regression. No
# rust-toolchain file pins rustc, so the ceiling leaves room for a newer compiler's output.
#
# Three modules: `strata_wasm` (the store: what every page loads) is built without the crate's
# default features, so without the policy executor; `strata_policies` (the same plus the
# executor and the policy methods, cargo feature `policies`) is what the worker moves a store to
# when it has or gets a policy; `strata_mirror` (with `StrataMirror`, the redundant system, and the
# executor: feature `mirror`) is imported only for `openMirror`. So pages that use no policy and
# no mirror download only the first. The 250 KiB target is the main module's: over it from
# 2026-12-05 to 2026-12-07 (282,297 bytes last), 241,272 bytes once the executor left it. The
# policies module has a ceiling of 300 KiB (STRATA_POLICIES_GZ_LIMIT_BYTES; 285,643 bytes then),
# and the mirror module its own (STRATA_MIRROR_GZ_LIMIT_BYTES, default 360 KiB: 340 KiB until 2026-12-05, when a mirror gained
# storage management, the policy executor instantiated over it, and measured 348,723 bytes;
# 321,350 bytes after the cuts below).
#
# Measured on 2026-11-25: 270 KiB, 279 KiB at the end of the day; 253,848 bytes (248 KiB) after a day's cuts
# (policy enums without serde's buffering, one sort and one hasher, a one-table CRC-32C). binaryen's wasm-opt (npm `binaryen` 132) was tried: -Oz and
# -Os cut the raw size by 9-10% but made the gzipped size 5% larger (LLVM's output compresses
# better), so it is not used; opt-level "s" instead of "z" gave 297 KiB. 276,415 bytes on
# 2026-12-05 after the policy executor moved above the store; then 251,144 bytes with the small
# maps as sorted vectors (litemap: each BTreeMap instantiation was ~8 KiB of code) and one
# future_to_promise for every exported method (wasm/src/promise.rs; ~500 bytes per method
# before). Most of the rest is the engine's own code and its serde/serde_json instantiations.
#
# Built with `wasm-pack build --mode no-install` (wasm-pack and the wasm-bindgen CLI of the version
# Cargo.lock pins both come from scripts/setup.sh; nothing is downloaded here; wasm-pack asks
# crates.io for its latest version once a day and only prints the answer), without wasm-opt
# (wasm/Cargo.toml says so; see above) and without the package.json wasm-pack would write: this
# script writes one that lists the worker, the client and both modules. wasm-pack's wasm-bindgen
# call keeps the name section it is given (331 KiB gzipped), so the linker strips the names and
# keeps only the `target_features` section wasm-bindgen reads. `npm pack wasm/pkg` makes the
# tarball.
set -euo pipefail
# shellcheck source=scripts/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
cd "$REPO_ROOT"

out_dir=$(realpath -m "${1:-wasm/pkg}")
target_bytes=$((250 * 1024))
limit_bytes=${STRATA_WASM_GZ_LIMIT_BYTES:-$((260 * 1024))}
policies_limit_bytes=${STRATA_POLICIES_GZ_LIMIT_BYTES:-$((300 * 1024))}
mirror_limit_bytes=${STRATA_MIRROR_GZ_LIMIT_BYTES:-$((360 * 1024))}

# Prints the gzipped sizes of the package's two modules (the main one against the target) and
# fails above the ceilings. Run on the skip path too, so that a rerun after a size failure fails
# again.
check_size() {
  local module wasm_file raw_bytes gz_bytes verdict limit
  for module in strata_wasm strata_policies strata_mirror; do
    wasm_file="$out_dir/${module}_bg.wasm"
    [ -f "$wasm_file" ] || die "no $wasm_file"
    raw_bytes=$(wc -c <"$wasm_file")
    gz_bytes=$(gzip -9 -c "$wasm_file" | wc -c)
    case $module in
      strata_wasm)
        limit=$limit_bytes
        verdict="within the $((target_bytes / 1024)) KiB target"
        [ "$gz_bytes" -le "$target_bytes" ] || verdict="OVER the $((target_bytes / 1024)) KiB target"
        ;;
      strata_policies)
        limit=$policies_limit_bytes
        verdict="loaded only for a store with a policy"
        ;;
      *)
        limit=$mirror_limit_bytes
        verdict="loaded only by openMirror"
        ;;
    esac
    log "build-npm: ${module}_bg.wasm is $((raw_bytes / 1024)) KiB, $gz_bytes bytes ($((gz_bytes / 1024)) KiB) gzipped: $verdict"
    [ "$gz_bytes" -le "$limit" ] ||
      die "the gzipped ${module}_bg.wasm ($gz_bytes bytes) is over the limit ($limit bytes)"
  done
}

# Skip the build when the package is newer than everything it is made from (scripts/build-web.sh
# builds it just before scripts/test.sh's test-npm stage asks again). STRATA_NPM_REBUILD=1 forces.
if [ -z "${STRATA_NPM_REBUILD:-}" ] && [ -f "$out_dir/package.json" ] &&
  [ -z "$(find wasm/src wasm/js wasm/README.md wasm/Cargo.toml engine/src engine/Cargo.toml \
    Cargo.toml Cargo.lock scripts/build-npm.sh -newer "$out_dir/package.json" -print -quit)" ]; then
  log "build-npm: $out_dir is newer than its inputs: not rebuilt (STRATA_NPM_REBUILD=1 forces)"
  check_size
  exit 0
fi

version=$(locked_wasm_bindgen_version)
command -v wasm-bindgen >/dev/null && [ "$(wasm-bindgen --version)" = "wasm-bindgen $version" ] ||
  die "wasm-bindgen $version is not installed (Cargo.lock pins it): run scripts/setup.sh"
command -v wasm-pack >/dev/null && [ "$(wasm-pack --version)" = "wasm-pack $WASM_PACK_VERSION" ] ||
  die "wasm-pack $WASM_PACK_VERSION is not installed: run scripts/setup.sh"

# Size over speed for the download: the whole program optimised as one unit (LTO, one codegen
# unit) for size, without debug info. Given here rather than in the workspace's release profile,
# which the dashboard and the CLI share; cargo keeps these artifacts apart from theirs.
size_profile=(
  --config 'profile.release.lto = true'
  --config 'profile.release.codegen-units = 1'
  --config 'profile.release.debug = 0'
  --config 'profile.release.opt-level = "z"'
  --config 'profile.release.package.strata-wasm.opt-level = "z"'
  --config 'profile.release.package."*".opt-level = "z"'
  --config 'target.wasm32-unknown-unknown.rustflags = ["-Clink-arg=--strip-all", "-Clink-arg=--keep-section=target_features"]'
)
rm -rf "$out_dir"
# One wasm-pack build per module, one after the other: both link
# target/wasm32-unknown-unknown/release/strata_wasm.wasm (cargo keeps each feature set's
# artifacts apart and copies the right one there), and wasm-pack binds it before the next build.
for module in strata_wasm strata_policies strata_mirror; do
  case $module in
    strata_wasm) features=(--no-default-features) ;;
    strata_policies) features=(--no-default-features --features policies) ;;
    strata_mirror) features=(--features mirror) ;;
  esac
  log "build-npm: $module: wasm-pack build wasm --release --target web --mode no-install -- ${features[*]} (LTO, opt-level z)"
  wasm-pack --quiet build wasm --release --target web --mode no-install --no-pack \
    --out-dir "$out_dir" --out-name "$module" -- "${features[@]}" "${size_profile[@]}"
done
# wasm-pack's `.gitignore` (`*`) would hide the files from git-based tools; wasm/pkg is ignored
# by the repository's own .gitignore.
rm -f "$out_dir/.gitignore"

cp wasm/js/*.js wasm/js/*.d.ts "$out_dir/"
cp wasm/README.md "$out_dir/README.md"

# The package's version is the workspace's, which every crate inherits.
package_version=$(awk '
  /^\[workspace\.package\]/ { in_section = 1; next }
  /^\[/ { in_section = 0 }
  in_section && $1 == "version" { gsub(/"/, "", $3); print $3; exit }
' Cargo.toml)
[ -n "$package_version" ] || die "no version in [workspace.package] of Cargo.toml"

cat >"$out_dir/package.json" <<EOF
{
  "name": "strata-engine",
  "version": "$package_version",
  "description": "Incremental block storage with snapshots in the browser (OPFS, IndexedDB), in a module worker",
  "license": "MIT OR Apache-2.0",
  "type": "module",
  "main": "./index.js",
  "module": "./index.js",
  "types": "./index.d.ts",
  "exports": {
    ".": { "types": "./index.d.ts", "default": "./index.js" },
    "./client": { "types": "./client.d.ts", "default": "./client.js" },
    "./sqlite": { "types": "./sqlite.d.ts", "default": "./sqlite.js" },
    "./wasm": { "types": "./strata_wasm.d.ts", "default": "./strata_wasm.js" },
    "./worker.js": "./worker.js",
    "./strata_wasm_bg.wasm": "./strata_wasm_bg.wasm",
    "./strata_policies.js": "./strata_policies.js",
    "./strata_policies_bg.wasm": "./strata_policies_bg.wasm",
    "./strata_mirror.js": "./strata_mirror.js",
    "./strata_mirror_bg.wasm": "./strata_mirror_bg.wasm",
    "./package.json": "./package.json"
  },
  "files": [
    "index.js",
    "index.d.ts",
    "client.js",
    "client.d.ts",
    "sqlite.js",
    "sqlite.d.ts",
    "worker.js",
    "strata_wasm.js",
    "strata_wasm.d.ts",
    "strata_wasm_bg.wasm",
    "strata_wasm_bg.wasm.d.ts",
    "strata_policies.js",
    "strata_policies.d.ts",
    "strata_policies_bg.wasm",
    "strata_policies_bg.wasm.d.ts",
    "strata_mirror.js",
    "strata_mirror.d.ts",
    "strata_mirror_bg.wasm",
    "strata_mirror_bg.wasm.d.ts",
    "README.md"
  ],
  "peerDependencies": { "@journeyapps/wa-sqlite": "^2.0.6" },
  "peerDependenciesMeta": { "@journeyapps/wa-sqlite": { "optional": true } },
  "sideEffects": ["./worker.js"],
  "keywords": ["block-storage", "snapshots", "opfs", "indexeddb", "wasm", "worker", "sqlite"]
}
EOF

check_size
log "build-npm: done: package strata-engine $package_version in $out_dir"
