#!/usr/bin/env bash
# Walks one release through the Compose stack, as CI and a cluster would see it:
#   1. brings the stack up (building the images first if they are missing);
#   2. exports the ferry-agent image from the Docker engine to an OCI layout and pushes it into
#      the origin as origin:5000/demo/app:VERSION (skopeo);
#   3. publishes it with the ferry CLI image: from the OCI layout (FERRY_DEMO_SOURCE=oci, the
#      default) or from the origin registry (FERRY_DEMO_SOURCE=docker);
#   4. waits for ferry-agent's commit and prints it from the git server (git log -1 -p).
#
# Usage: compose/demo.sh [VERSION]     (default 1.0.0; settings in compose/lib.sh)
# Needs: docker with Compose, skopeo; and for a first build, cargo, git, busybox, docker-registry.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

version=${1:-1.0.0}
source_kind=${FERRY_DEMO_SOURCE:-oci}
image=origin:5000/demo/app
command -v skopeo >/dev/null || die "needs skopeo to push the demo image: apt-get install skopeo"
require_engine

for name in ferry-server ferry-agent ferry ferry-compose/origin ferry-compose/git-server; do
  if ! docker image inspect "$name:latest" >/dev/null 2>&1; then
    echo "== image $name:latest is missing: building the images" >&2
    "$compose_dir/build-images.sh"
    break
  fi
done

echo "== starting the stack (project $COMPOSE_PROJECT_NAME)" >&2
compose up -d
wait_server_ready 60
wait_healthy origin 60
wait_healthy git-server 60

work=${FERRY_DEMO_WORK:-$compose_dir/../target/compose-demo}
mkdir -p "$work"
layout=$work/app
echo "== pushing $image:$version into the origin (the ferry-agent image, via an OCI layout)" >&2
skopeo copy --quiet "docker-daemon:ferry-agent:latest" "oci:$layout:$version" >&2
skopeo copy --quiet --dest-tls-verify=false "oci:$layout:$version" \
  "docker://127.0.0.1:$FERRY_ORIGIN_PORT/demo/app:$version" >&2
# The CLI container runs as ferry (65532) and reads the layout through a bind mount.
chmod -R a+rX "$work"

before=$(config_git rev-parse HEAD)
echo "== ferry publish ($source_kind source)" >&2
case $source_kind in
  oci)
    publish_args=("oci:/layouts/app:$version" --image "$image" --origin "docker://$image") ;;
  docker)
    publish_args=("docker://$image:$version" --insecure) ;;
  *) die "FERRY_DEMO_SOURCE=$source_kind: use oci or docker" ;;
esac
digest=$(compose run --rm -T -v "$(cd "$work" && pwd):/layouts:ro" ferry publish \
  "${publish_args[@]}" --label "org.opencontainers.image.version=$version")
echo "published $image:$version as $digest" >&2

echo "== waiting for ferry-agent's commit" >&2
deadline=$((SECONDS + 60))
until config_git show HEAD:apps/demo/deployment.yaml | grep -qF "image: $image:$version"; do
  ((SECONDS < deadline)) || {
    compose logs --tail 50 ferry-agent >&2
    die "no commit setting $image:$version within 60s (HEAD is still $(config_git rev-parse HEAD), was $before)"
  }
  sleep 0.5
done
config_git log -1 -p
