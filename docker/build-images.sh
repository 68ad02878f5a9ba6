#!/usr/bin/env bash
# Builds minikafka's images with no image registry: a Debian base from Debian's archive
# (debootstrap), Python packages from a wheelhouse downloaded on the host, the project from this
# checkout. Every step is skipped or cached when nothing changed, so a second run takes seconds.
#
#   BASE_IMAGE=python:3.11-slim-bookworm docker/build-images.sh   # where a registry is reachable
set -euo pipefail
cd "$(dirname "$0")/.."

LOCAL_BASE=minikafka-base:bookworm
BASE_IMAGE=${BASE_IMAGE:-$LOCAL_BASE}
PYTHON=${PYTHON:-python3}
WHEELHOUSE=docker/wheelhouse

if [ "$BASE_IMAGE" = "$LOCAL_BASE" ] && ! docker image inspect "$LOCAL_BASE" >/dev/null 2>&1; then
    if ! command -v debootstrap >/dev/null; then
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
    fi
    mirror=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
    mirror=${mirror:-http://deb.debian.org/debian}
    rootfs=$(mktemp -d)
    trap 'rm -rf "$rootfs"' EXIT
    echo "Building $LOCAL_BASE from $mirror (about a minute, once)"
    debootstrap --variant=minbase \
        --include=python3,python3-venv,zookeeper,netcat-openbsd,iproute2,procps \
        bookworm "$rootfs" "$mirror" >/dev/null
    # apt's lists are not needed at run time; a smaller image imports faster.
    rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*
    tar -C "$rootfs" -c . | docker import - "$LOCAL_BASE" >/dev/null
fi

# The project's dependencies as wheels for Python 3.11 on Linux, refreshed when pyproject.toml changes.
stamp="$WHEELHOUSE/.pyproject.sha256"
if [ ! -f "$stamp" ] || ! sha256sum --quiet -c "$stamp" >/dev/null 2>&1; then
    rm -rf "$WHEELHOUSE" && mkdir -p "$WHEELHOUSE"
    # The dependencies, and the chaos extra's (the client image runs `minikafka chaos --docker`).
    deps=$("$PYTHON" -c 'import tomllib; p = tomllib.load(open("pyproject.toml", "rb"))["project"]; print("\n".join(p["dependencies"] + p["optional-dependencies"]["chaos"]))')
    # shellcheck disable=SC2086
    "$PYTHON" -m pip download --quiet --only-binary=:all: --python-version 3.11 \
        --platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux_2_28_x86_64 \
        -d "$WHEELHOUSE" $deps "setuptools>=68" wheel
    printf '%s\n' "$deps" > "$WHEELHOUSE/requirements.txt"
    sha256sum pyproject.toml > "$stamp"
fi

# The gRPC code is generated, never committed: the image gets what `make proto` made.
# Without the buildx plugin docker uses its legacy builder, which says so on every build.
for target in zookeeper broker client; do
    docker build --quiet --build-arg BASE_IMAGE="$BASE_IMAGE" --target "$target" \
        -t "minikafka-$target" -f docker/Dockerfile . 2>&1 >/dev/null \
        | { grep -v -e 'legacy builder is deprecated' -e 'buildx component' -e 'docs.docker.com/go/buildx' \
            -e '^$' >&2 || true; }
done
echo "Images ready: minikafka-zookeeper, minikafka-broker, minikafka-client (base $BASE_IMAGE)"
