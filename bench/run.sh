#!/usr/bin/env bash
# Runs ferry's benchmarks: `bench/run.sh all`, or one scenario:
# `bench/run.sh registry|publish|fanout|end-to-end|upstream|catchup|status|promote|dashboard|notify|monorepo [options]`.
# Installs the load generator and peers when missing, builds release binaries, and writes the
# results into BENCHMARKS.md.
set -euo pipefail
cd "$(dirname "$0")/.."
missing=()
command -v wrk >/dev/null || missing+=(wrk)
command -v ab >/dev/null || missing+=(apache2-utils)
# nginx is the second ceiling of the registry scenario (sbin: not on every PATH).
{ command -v nginx >/dev/null || [ -x /usr/sbin/nginx ]; } || missing+=(nginx-light)
command -v skopeo >/dev/null || missing+=(skopeo)
command -v docker-registry >/dev/null || missing+=(docker-registry)
if ((${#missing[@]})); then
  sudo=""; [ "$(id -u)" = 0 ] || sudo=sudo
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}"
fi
cargo build --release --workspace --bins
exec target/release/ferry-bench "${1:-all}" "${@:2}"
