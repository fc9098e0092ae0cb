#!/usr/bin/env bash
# Tests the Compose stack on the real Docker engine: builds the images (compose/build-images.sh),
# runs the demo, and checks
#   - the images: non-root user, OCI labels (version from Cargo.toml, revision = git HEAD);
#   - ferry-server's /healthz and /readyz answer 200, and its registry serves the release;
#   - the agent's commit changes exactly the image line to the published reference, authored as
#     the agent's configured identity;
#   - after `restart ferry-server`, the same agent container (not restarted) reconnects and
#     applies the next release (1.1.0, published from the origin this time): a second commit;
# then removes the stack with its volumes (`down -v`), also on failure.
# Host ports are chosen free, and the project is ferry-compose-test, so a demo stack can stay up.
set -euo pipefail
cd "$(dirname "$0")/.."
export COMPOSE_PROJECT_NAME=ferry-compose-test

free_port() {
  local port
  while :; do
    port=$((20000 + RANDOM % 20000))
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null || { echo "$port"; return; }
  done
}
export FERRY_HTTP_PORT=$(free_port) FERRY_GRPC_PORT=$(free_port) FERRY_ORIGIN_PORT=$(free_port)
source compose/lib.sh
require_engine

# The images copy these programs from the host (build-images.sh); skopeo pushes the demo image.
missing=()
command -v busybox >/dev/null || missing+=(busybox-static)
command -v docker-registry >/dev/null || missing+=(docker-registry)
command -v skopeo >/dev/null || missing+=(skopeo)
if ((${#missing[@]})); then
  echo "installing: ${missing[*]}" >&2
  sudo=""
  [ "$(id -u)" = 0 ] || sudo=sudo
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}"
fi
export FERRY_DEMO_WORK=$(mktemp -d)

passed=0
failed=0
check() {
  local what=$1
  shift
  if "$@"; then
    passed=$((passed + 1))
    echo "ok: $what"
  else
    failed=$((failed + 1))
    echo "FAILED: $what" >&2
  fi
}

cleanup() {
  local rc=$?
  if ((rc != 0 || failed != 0)); then
    echo "== logs of the failed run" >&2
    compose logs --no-color --tail 80 >&2 || true
  fi
  compose down -v --remove-orphans >/dev/null 2>&1 || true
  rm -rf "$FERRY_DEMO_WORK"
}
trap cleanup EXIT

started=$SECONDS
compose/build-images.sh
echo "== images built in $((SECONDS - started))s"

version=$(sed -n '/^\[workspace.package\]/,/^\[/s/^version = "\(.*\)"/\1/p' Cargo.toml)
label() { docker image inspect --format "{{index .Config.Labels \"org.opencontainers.image.$2\"}}" "$1:latest"; }
for name in ferry-server ferry-agent ferry; do
  check "$name runs as ferry (65532)" [ "$(docker image inspect --format '{{.Config.User}}' "$name:latest")" = 65532:65532 ]
  check "$name is labelled version $version" [ "$(label "$name" version)" = "$version" ]
  check "$name is labelled revision HEAD" [ "$(label "$name" revision)" = "$(git rev-parse HEAD)" ]
done

demo_start=$SECONDS
out=$(compose/demo.sh 1.0.0)
echo "$out"
echo "== first release applied in $((SECONDS - demo_start))s"

check "/healthz answers 200" [ "$(http_status "$FERRY_HTTP_PORT" /healthz)" = 200 ]
check "/readyz answers 200" [ "$(http_status "$FERRY_HTTP_PORT" /readyz)" = 200 ]
release_labels() {
  skopeo inspect --tls-verify=false "docker://127.0.0.1:$FERRY_HTTP_PORT/origin_5000/demo/app:1.0.0"
}
check "ferry's registry serves the release with the image's OCI labels" \
  grep -qF "\"org.opencontainers.image.revision\": \"$(git rev-parse HEAD)\"" <<<"$(release_labels)"
check "the commit sets the image to the published reference" \
  grep -qxF '+          image: origin:5000/demo/app:1.0.0' <<<"$out"
check "the commit removes the old image line" \
  grep -qxF -- '-          image: origin:5000/demo/app:0.0.0' <<<"$out"
check "the commit changes one line of one file" \
  [ "$(config_git show --numstat --format= HEAD)" = "$(printf '1\t1\tapps/demo/deployment.yaml')" ]
check "the commit is authored by the agent's identity" \
  [ "$(config_git log -1 --format='%an <%ae>')" = "ferry-agent <ferry-agent@compose.invalid>" ]

agent_id=$(compose ps -q ferry-agent)
agent_started=$(docker inspect --format '{{.State.StartedAt}}' "$agent_id")
echo "== restarting ferry-server"
compose restart ferry-server
wait_server_ready 60
out=$(FERRY_DEMO_SOURCE=docker compose/demo.sh 1.1.0)
echo "$out"
check "after the server restart the agent applies 1.1.0" \
  grep -qxF '+          image: origin:5000/demo/app:1.1.0' <<<"$out"
check "the config repo has the seed commit and two releases" [ "$(config_git rev-list --count HEAD)" = 3 ]
check "the agent reconnected without being restarted" \
  [ "$(docker inspect --format '{{.State.StartedAt}} {{.RestartCount}}' "$agent_id")" = "$agent_started 0" ]

echo "== compose/test.sh took $((SECONDS - started))s"
echo "compose: $passed passed, $failed failed"
((failed == 0))
