#!/usr/bin/env bash
# Stand-ins for the public base images (postgres:16, python:3.11-slim,
# apache/airflow:3.3.2-python3.11, redis:7), built from Debian bookworm's packages for a
# machine that cannot pull from a public registry. Each keeps the contract of the image it
# stands for (environment, entrypoint, user, paths), so deploy/ builds on it unchanged.
# Usage: deploy/stack-test/base-images.sh   (as root, with a running Docker engine)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
work=${STACK_TEST_WORK:-$here/../../var/stack-test}
prefix=${STAND_IN_PREFIX:-volforecast-stand-in}
ca_bundle=${STACK_TEST_CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}
mkdir -p "$work"

if ! docker image inspect "$prefix/bookworm:12" > /dev/null 2>&1; then
  if [ ! -x "$work/rootfs/bin/bash" ]; then
    rm -rf "$work/rootfs"
    debootstrap --variant=minbase bookworm "$work/rootfs" http://deb.debian.org/debian
  fi
  # The host's CA bundle: containers reach the package registries through it. Kept under
  # /usr/local/share so that update-ca-certificates (run when a package adds ca-certificates)
  # folds it back into the bundle.
  mkdir -p "$work/rootfs/usr/local/share/ca-certificates" "$work/rootfs/etc/ssl/certs"
  cp "$ca_bundle" "$work/rootfs/usr/local/share/ca-certificates/host-ca-bundle.crt"
  cp "$ca_bundle" "$work/rootfs/etc/ssl/certs/ca-certificates.crt"
  rm -rf "$work/rootfs/var/cache/apt/archives/"*.deb "$work/rootfs/var/lib/apt/lists/"*
  tar -C "$work/rootfs" -c . | docker import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV LANG=C.UTF-8' \
    --change 'ENV DEBIAN_FRONTEND=noninteractive' \
    --change 'ENV PIP_CERT=/etc/ssl/certs/ca-certificates.crt' \
    --change 'ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt' \
    --change 'ENV REQUESTS_CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt' \
    --change 'CMD ["bash"]' \
    - "$prefix/bookworm:12"
fi

build() {  # build NAME TAG [ARGS...]
  local name=$1 tag=$2
  shift 2
  docker build --quiet --build-arg "BASE_IMAGE=$prefix/bookworm:12" "$@" \
    -t "$prefix/$name:$tag" "$here/$name" > /dev/null
  echo "built $prefix/$name:$tag"
}
build python 3.11 &
build postgres 15 &
build redis 7 &
wait
build airflow 3.3.2 --build-arg "PYTHON_IMAGE=$prefix/python:3.11"
