#!/usr/bin/env bash
# Runs ferry's whole test suite. Installs the real peers the tests talk to when they are missing
# (skopeo, docker-registry, git with git-daemon, gpg, ssh-keygen), builds the binaries the
# end-to-end tests start, then runs every test. Extra arguments go to `cargo test`.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
command -v skopeo >/dev/null || missing+=(skopeo)
command -v docker-registry >/dev/null || missing+=(docker-registry)
command -v gpg >/dev/null || missing+=(gnupg)
command -v git >/dev/null || missing+=(git)
command -v ssh-keygen >/dev/null || missing+=(openssh-client)
if ((${#missing[@]})); then
  echo "installing test peers: ${missing[*]}" >&2
  sudo=""
  [ "$(id -u)" = 0 ] || sudo=sudo
  $sudo apt-get update -qq
  # policy-rc.d-less containers may try to start docker-registry's service; the tests start
  # their own registries on free ports, so a failed service start is harmless.
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}"
fi

cargo build --workspace --bins
cargo test --workspace "$@"
