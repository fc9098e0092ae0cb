#!/usr/bin/env bash
# Runs ferry's whole test suite. Installs the real peers the tests talk to when they are missing
# (skopeo, docker-registry, git with git-daemon and git-http-backend, gpg, ssh-keygen, sshd,
# lighttpd with TLS, openssl, kubectl, chromium, prometheus, kubernetes-validate from PyPI for
# the Kubernetes manifests, and jsonschema from PyPI for the notification schemas), builds the
# binaries the end-to-end tests start, then runs every test. Extra arguments go to `cargo test`.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
command -v skopeo >/dev/null || missing+=(skopeo)
command -v docker-registry >/dev/null || missing+=(docker-registry)
command -v gpg >/dev/null || missing+=(gnupg)
command -v git >/dev/null || missing+=(git)
command -v ssh-keygen >/dev/null || missing+=(openssh-client)
# sshd lives in /usr/sbin, which is not on every user's PATH.
[ -x /usr/sbin/sshd ] || missing+=(openssh-server)
command -v openssl >/dev/null || missing+=(openssl)
{ command -v lighttpd >/dev/null && [ -e /usr/lib/lighttpd/mod_openssl.so ]; } || missing+=(lighttpd lighttpd-mod-openssl)
# Debian's kubectl; a kubectl from elsewhere (e.g. the cloud SDK's) serves as well.
command -v kubectl >/dev/null || missing+=(kubernetes-client)
# Headless Chromium for the dashboard's browser test (tests/tests/dashboard.rs).
command -v chromium >/dev/null || missing+=(chromium)
# A real Prometheus scrapes the server and the agent (tests/tests/metrics.rs).
command -v prometheus >/dev/null || missing+=(prometheus)
if ((${#missing[@]})); then
  echo "installing test peers: ${missing[*]}" >&2
  sudo=""
  [ "$(id -u)" = 0 ] || sudo=sudo
  $sudo apt-get update -qq
  # Containers without policy-rc.d may try to start the docker-registry, ssh and lighttpd
  # services; the tests start their own servers on free ports, so a failed start is harmless.
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}"
fi

# The Kubernetes schema validator (it carries its schemas, so it needs no network at test time).
if ! command -v kubernetes-validate >/dev/null; then
  echo "installing kubernetes-validate (PyPI)" >&2
  python3 -m pip install --quiet kubernetes-validate
  # pyenv reaches new console scripts through shims, made by a rehash.
  if command -v pyenv >/dev/null; then pyenv rehash; fi
fi

# JSON Schema validation of the notification bodies (tests/tests/notify.rs checks them against
# docs/notification*.schema.json).
if ! python3 -c 'import jsonschema' 2>/dev/null; then
  echo "installing jsonschema (PyPI)" >&2
  python3 -m pip install --quiet jsonschema
fi

cargo build --workspace --bins
cargo test --workspace "$@"
