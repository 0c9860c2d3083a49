#!/usr/bin/env bash
# Runs every memlens test on this machine, installing what the tests need first.
#
#   scripts/test-all.sh            # everything (what CI runs)
#   MEMLENS_SKIP_LAB=1 ...         # not allowed in CI: lab tests then FAIL with a setup hint
#
# Steps: system packages (qemu, busybox, makedumpfile, static libc) -> the real-target lab
# (downloads the current Debian kernel, boots guests under QEMU, writes dumps + ground
# truth into target/testlab) -> fmt, clippy, docs -> cargo test of the whole workspace ->
# a 20-second fuzz smoke run of every fuzz target.
set -euo pipefail
cd "$(dirname "$0")/.."

need_pkgs=()
command -v qemu-system-x86_64 >/dev/null || need_pkgs+=(qemu-system-x86)
command -v qemu-system-aarch64 >/dev/null || need_pkgs+=(qemu-system-arm)
command -v busybox >/dev/null || need_pkgs+=(busybox-static)
command -v makedumpfile >/dev/null || need_pkgs+=(makedumpfile)
[ -e /usr/lib/x86_64-linux-gnu/libc.a ] || need_pkgs+=(libc6-dev)
command -v gcc >/dev/null || need_pkgs+=(gcc)
command -v xz >/dev/null || need_pkgs+=(xz-utils)
command -v zstd >/dev/null || need_pkgs+=(zstd)
if [ ${#need_pkgs[@]} -gt 0 ]; then
  echo "==> installing ${need_pkgs[*]}"
  if [ "$(id -u)" -ne 0 ]; then
    echo "error: missing packages ${need_pkgs[*]}; run: sudo apt-get install -y ${need_pkgs[*]}" >&2
    exit 1
  fi
  apt-get update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${need_pkgs[@]}"
fi

echo "==> style: cargo fmt --check"
cargo fmt --all -- --check
echo "==> lint: cargo clippy --all-targets -- -D warnings"
cargo clippy --workspace --all-targets -- -D warnings
echo "==> features: the memlens facade with only what a dump reader needs (file, linux)"
cargo check --quiet -p memlens --no-default-features --features file,linux
echo "==> docs: cargo doc --no-deps (warnings are errors)"
RUSTDOCFLAGS=-Dwarnings cargo doc --workspace --no-deps --quiet

if [ -d crates/testlab ]; then
  echo "==> lab: building real-target scenarios (cached in target/testlab)"
  cargo run --release -q -p testlab -- build all
fi

echo "==> tests"
# --no-fail-fast: one failing test binary must not hide the results of the others.
cargo test --workspace --release --no-fail-fast 2>&1 | tee target/test-output.log
grep -q "test result" target/test-output.log

# Every fuzz target for ~20 s on its seeds and regression inputs, then mutations: a parser
# that panics, leaks or allocates past 2 GB on them fails here (cargo-fuzz is installed
# from crates.io when missing; the long campaign is `scripts/fuzz.sh campaign`).
echo "==> fuzz smoke (docs/fuzzing.md)"
scripts/fuzz.sh smoke
