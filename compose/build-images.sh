#!/usr/bin/env bash
# Builds ferry's container images, and the two peers of the Compose stack, on a machine that
# cannot pull base images. Every image is FROM scratch: a program from this host plus exactly the
# shared libraries `ldd` says it loads (and the dynamic loader), an /etc/passwd and /etc/group with
# the non-root user ferry (65532), the host's CA bundle and an empty /tmp.
#
#   ferry-server:VERSION      /usr/local/bin/ferry-server, VOLUME /data (owned by ferry)
#   ferry-agent:VERSION       /usr/local/bin/ferry-agent, VOLUME /var/lib/ferry-agent
#   ferry:VERSION             /usr/local/bin/ferry (CI runs `ferry publish` from it)
#   ferry-compose/origin      Debian's docker-registry, plus busybox for its health check
#   ferry-compose/git-server  git daemon serving a seeded config repo (compose/git-server/seed)
#
# Each is also tagged :latest. VERSION is the workspace version in Cargo.toml; the ferry images
# carry the OCI labels version, revision (git HEAD) and source.
#
# Usage: compose/build-images.sh            # builds the release binaries first (cargo, incremental)
#        FERRY_SKIP_CARGO=1 compose/build-images.sh   # use target/release/ as it is
# Needs: docker (an engine that answers), git, busybox (Debian: busybox-static), docker-registry.
set -euo pipefail
cd "$(dirname "$0")/.."
repo_root=$PWD

fail() {
  echo "build-images.sh: $*" >&2
  exit 1
}

for tool in docker git ldd; do
  command -v "$tool" >/dev/null || fail "needs $tool on PATH"
done
command -v busybox >/dev/null ||
  fail "needs busybox for the origin's health check: apt-get install busybox-static"
command -v docker-registry >/dev/null ||
  fail "needs Debian's docker-registry for the origin image: apt-get install docker-registry"
docker info >/dev/null 2>&1 || fail "no Docker engine answers (docker info failed); start dockerd"

version=$(sed -n '/^\[workspace.package\]/,/^\[/s/^version = "\(.*\)"/\1/p' Cargo.toml)
[ -n "$version" ] || fail "no version under [workspace.package] in Cargo.toml"
revision=$(git rev-parse HEAD)
source_url=${FERRY_IMAGE_SOURCE:-$(git remote get-url origin 2>/dev/null || echo "file://$repo_root")}
user_id=65532

if [ "${FERRY_SKIP_CARGO:-}" != 1 ]; then
  cargo build --release -p ferry-server -p ferry-agent -p ferry-cli --bins
fi
for bin in ferry-server ferry-agent ferry; do
  [ -x "target/release/$bin" ] || fail "target/release/$bin is missing: run cargo build --release --bins"
done

work=target/images
rm -rf "$work"
mkdir -p "$work"

# Copies a program to ROOTFS/DEST and every shared library it loads, at the paths ldd names,
# resolving symlinks so the image holds real files. A static program brings no libraries.
add_program() {
  local rootfs=$1 program=$2 dest=$3
  install -D -m 0755 "$program" "$rootfs$dest"
  local lib
  for lib in $(ldd "$program" 2>/dev/null | grep -o '/[^ ]*' || true); do
    [ -e "$rootfs$lib" ] || install -D -m 0755 "$(readlink -f "$lib")" "$rootfs$lib"
  done
}

# add_ferry_program ROOTFS NAME: a ferry binary from target/release without its line tables
# (the release profile keeps them for profiling; they are most of the file). The symbol table
# stays, so a panic's backtrace still names functions.
add_ferry_program() {
  local rootfs=$1 name=$2
  add_program "$rootfs" "target/release/$name" "/usr/local/bin/$name"
  if command -v strip >/dev/null; then
    strip --strip-debug "$rootfs/usr/local/bin/$name"
  fi
}

# The files every image has: the user, name resolution, CA certificates, /tmp.
base_rootfs() {
  local rootfs=$1
  mkdir -p "$rootfs/etc/ssl/certs" "$rootfs/tmp"
  chmod 1777 "$rootfs/tmp"
  cat >"$rootfs/etc/passwd" <<EOF
root:x:0:0:root:/root:/sbin/nologin
ferry:x:$user_id:$user_id:ferry:/nonexistent:/sbin/nologin
EOF
  cat >"$rootfs/etc/group" <<EOF
root:x:0:
ferry:x:$user_id:
EOF
  echo "hosts: files dns" >"$rootfs/etc/nsswitch.conf"
  install -m 0644 /etc/ssl/certs/ca-certificates.crt "$rootfs/etc/ssl/certs/ca-certificates.crt"
}

# build NAME DIR [docker build flags]: DIR holds rootfs/, owned/ (copied owned by ferry) and the
# Dockerfile body after the COPY lines.
build() {
  local name=$1 dir=$2
  shift 2
  mkdir -p "$dir/owned"
  {
    echo "FROM scratch"
    echo "COPY rootfs/ /"
    echo "COPY --chown=$user_id:$user_id owned/ /"
    echo "USER $user_id:$user_id"
    echo "ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt"
    cat "$dir/tail"
  } >"$dir/Dockerfile"
  local previous
  previous=$(docker image inspect --format '{{.Id}}' "$name:latest" 2>/dev/null || true)
  # The legacy builder needs no BuildKit and pulls nothing for FROM scratch.
  DOCKER_BUILDKIT=0 docker build --quiet "$@" -t "$name:latest" "$dir" >/dev/null 2>"$dir/build.log" ||
    { cat "$dir/build.log" >&2; fail "docker build $name failed"; }
  # A rebuild leaves the previous image untagged; drop it unless a container still uses it.
  if [ -n "$previous" ] && [ "$previous" != "$(docker image inspect --format '{{.Id}}' "$name:latest")" ]; then
    docker image rm "$previous" >/dev/null 2>&1 || true
  fi
}

ferry_labels=(
  --label "org.opencontainers.image.version=$version"
  --label "org.opencontainers.image.revision=$revision"
  --label "org.opencontainers.image.source=$source_url"
  --label "org.opencontainers.image.licenses=Apache-2.0"
)

# ferry-server: the database lives on the /data volume.
dir=$work/ferry-server
base_rootfs "$dir/rootfs"
add_ferry_program "$dir/rootfs" ferry-server
mkdir -p "$dir/owned/data"
cat >"$dir/tail" <<'EOF'
ENV FERRY_DATA_DIR=/data
VOLUME ["/data"]
EXPOSE 5000 50051
ENTRYPOINT ["/usr/local/bin/ferry-server"]
CMD ["serve"]
EOF
build ferry-server "$dir" "${ferry_labels[@]}" \
  --label "org.opencontainers.image.title=ferry-server" \
  --label "org.opencontainers.image.description=ferry's control plane: OCI read API on :5000, gRPC on :50051"

# ferry-agent: clones and its cursor live on the state volume.
dir=$work/ferry-agent
base_rootfs "$dir/rootfs"
add_ferry_program "$dir/rootfs" ferry-agent
mkdir -p "$dir/owned/var/lib/ferry-agent"
cat >"$dir/tail" <<'EOF'
ENV FERRY_AGENT_STATE_DIR=/var/lib/ferry-agent
VOLUME ["/var/lib/ferry-agent"]
ENTRYPOINT ["/usr/local/bin/ferry-agent"]
EOF
build ferry-agent "$dir" "${ferry_labels[@]}" \
  --label "org.opencontainers.image.title=ferry-agent" \
  --label "org.opencontainers.image.description=Applies ferry releases to GitOps config repositories"

# ferry: the CLI, for CI systems that run steps in containers.
dir=$work/ferry
base_rootfs "$dir/rootfs"
add_ferry_program "$dir/rootfs" ferry
cat >"$dir/tail" <<'EOF'
ENTRYPOINT ["/usr/local/bin/ferry"]
EOF
build ferry "$dir" "${ferry_labels[@]}" \
  --label "org.opencontainers.image.title=ferry" \
  --label "org.opencontainers.image.description=ferry publish: records built images in ferry-server"

# The origin registry of the stack: Debian's docker-registry with a filesystem store.
dir=$work/origin
base_rootfs "$dir/rootfs"
add_program "$dir/rootfs" "$(command -v docker-registry)" /usr/bin/docker-registry
add_program "$dir/rootfs" "$(command -v busybox)" /bin/busybox
install -D -m 0644 compose/origin/config.yml "$dir/rootfs/etc/docker/registry/config.yml"
mkdir -p "$dir/owned/var/lib/registry"
cat >"$dir/tail" <<'EOF'
VOLUME ["/var/lib/registry"]
EXPOSE 5000
ENTRYPOINT ["/usr/bin/docker-registry"]
CMD ["serve", "/etc/docker/registry/config.yml"]
EOF
build ferry-compose/origin "$dir" --label "org.opencontainers.image.title=ferry-compose origin"

# The git server: git daemon, with the config repo seeded from compose/git-server/seed. git finds
# git-daemon and its other helpers in the exec path compiled into it, so both go where this
# host's git has them.
dir=$work/git-server
base_rootfs "$dir/rootfs"
git_bin=$(readlink -f "$(command -v git)")
exec_path=$(git --exec-path)
add_program "$dir/rootfs" "$git_bin" /usr/bin/git
mkdir -p "$dir/rootfs$exec_path"
ln -sf /usr/bin/git "$dir/rootfs$exec_path/git"
add_program "$dir/rootfs" "$exec_path/git-daemon" "$exec_path/git-daemon"
seed=$dir/owned/srv/git/config.git
mkdir -p "$(dirname "$seed")"
git init --quiet --bare --initial-branch=main "$seed"
clone=$work/seed-clone
rm -rf "$clone"
git clone --quiet "$seed" "$clone" 2>/dev/null
cp -R compose/git-server/seed/. "$clone/"
git -C "$clone" add -A
# Dated like HEAD, so that one revision of ferry always seeds the same commit.
GIT_AUTHOR_DATE=$(git log -1 --format=%cI) GIT_COMMITTER_DATE=$(git log -1 --format=%cI) \
  git -C "$clone" -c user.name="ferry compose seed" -c user.email=seed@ferry.invalid \
  -c commit.gpgsign=false commit --quiet -m "Seed the config repo"
git -C "$clone" push --quiet origin HEAD:main
rm -rf "$clone"
cat >"$dir/tail" <<'EOF'
VOLUME ["/srv/git"]
EXPOSE 9418
ENTRYPOINT ["/usr/bin/git"]
CMD ["daemon", "--reuseaddr", "--base-path=/srv/git", "--export-all", "--enable=receive-pack", "--listen=0.0.0.0", "--port=9418", "/srv/git"]
EOF
build ferry-compose/git-server "$dir" --label "org.opencontainers.image.title=ferry-compose git-server"

for name in ferry-server ferry-agent ferry; do
  docker tag "$name:latest" "$name:$version"
done
echo "built (version $version, revision $revision):"
docker image ls --format '{{.Repository}}:{{.Tag}} {{.Size}}' |
  grep -E '^(ferry|ferry-server|ferry-agent|ferry-compose/[a-z-]+):' | sort | sed 's/^/  /'
