# Helpers shared by compose/demo.sh and compose/test.sh (sourced, not run).
#
# Settings, all optional:
#   COMPOSE_PROJECT_NAME   the stack's project name (default ferry-demo)
#   FERRY_HTTP_PORT        host loopback port for ferry's registry API (default 15000)
#   FERRY_GRPC_PORT        host loopback port for ferry's gRPC (default 15051)
#   FERRY_ORIGIN_PORT      host loopback port for the origin registry (default 15001)

compose_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
export COMPOSE_PROJECT_NAME=${COMPOSE_PROJECT_NAME:-ferry-demo}
export FERRY_HTTP_PORT=${FERRY_HTTP_PORT:-15000}
export FERRY_GRPC_PORT=${FERRY_GRPC_PORT:-15051}
export FERRY_ORIGIN_PORT=${FERRY_ORIGIN_PORT:-15001}

die() {
  echo "$(basename "$0"): $*" >&2
  exit 1
}

# The Compose tool: the `docker compose` plugin (v2) where installed, else Debian's
# `docker-compose` (1.29 reads the same Compose-spec file).
if docker compose version >/dev/null 2>&1; then
  compose_cmd=(docker compose)
elif command -v docker-compose >/dev/null; then
  compose_cmd=(docker-compose)
else
  die "needs Docker Compose: the docker compose plugin, or Debian's docker-compose (apt-get install docker-compose)"
fi

compose() {
  "${compose_cmd[@]}" --file "$compose_dir/compose.yaml" --project-name "$COMPOSE_PROJECT_NAME" "$@"
}

require_engine() {
  docker info >/dev/null 2>&1 ||
    die "needs a Docker engine, and none answers (docker info failed). Install docker.io and docker-compose (Debian) and start dockerd, or point DOCKER_HOST at an engine"
}

# The HTTP status of GET http://127.0.0.1:PORT/PATH, or 000 when nothing answers. Uses bash's
# /dev/tcp so the host needs no HTTP client.
http_status() {
  local port=$1 path=$2 line
  line=$(
    exec 2>/dev/null
    exec 3<>"/dev/tcp/127.0.0.1/$port" || exit 0
    printf 'GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' "$path" >&3
    head -n 1 <&3
  ) || true
  local status=${line#HTTP/1.? }
  status=${status%% *}
  [[ $status =~ ^[0-9]{3}$ ]] && echo "$status" || echo 000
}

# Waits until ferry-server's /readyz answers 200 on the host port.
wait_server_ready() {
  local deadline=$((SECONDS + ${1:-60}))
  until [ "$(http_status "$FERRY_HTTP_PORT" /readyz)" = 200 ]; do
    ((SECONDS < deadline)) || die "ferry-server was not ready within ${1:-60}s (GET 127.0.0.1:$FERRY_HTTP_PORT/readyz)"
    sleep 0.5
  done
}

# Waits until the health check of SERVICE reports healthy.
wait_healthy() {
  local service=$1 deadline=$((SECONDS + ${2:-60})) id status
  id=$(compose ps -q "$service")
  [ -n "$id" ] || die "service $service has no container"
  while :; do
    status=$(docker inspect --format '{{.State.Health.Status}}' "$id")
    [ "$status" = healthy ] && return 0
    ((SECONDS < deadline)) || die "service $service is $status after ${2:-60}s"
    sleep 0.5
  done
}

# git in the git server's config repo, e.g. `config_git log -1 -p`.
config_git() {
  compose exec -T git-server /usr/bin/git --git-dir=/srv/git/config.git "$@"
}
