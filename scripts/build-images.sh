#!/usr/bin/env bash
# Build the local images the tests and the demo need, on a machine with no registry.
#
#   scripts/build-images.sh base       Debian 13 minbase from debootstrap -> moneytracker-local/debian:trixie
#   scripts/build-images.sh testhost   systemd Debian 13 test host         -> moneytracker-local/testhost:trixie
#
# Every image is cached: it is rebuilt only when it is missing or when the files it is built
# from changed (their hash is stored as the image label org.moneytracker.inputs).
# A CI with a registry skips all this by setting MOLECULE_TESTHOST_IMAGE to a published image.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SUITE="${DEBIAN_SUITE:-trixie}"
MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
BASE_IMAGE="${MONEYTRACKER_BASE_IMAGE:-moneytracker-local/debian:${SUITE}}"
TESTHOST_IMAGE="${MOLECULE_TESTHOST_IMAGE:-moneytracker-local/testhost:${SUITE}}"

log() { printf '[build-images] %s\n' "$*" >&2; }

inputs_hash() {  # hash of the files an image is built from, plus the suite
  (echo "$SUITE"; cat "$@") | sha256sum | cut -c1-16
}

image_label() {
  docker image inspect --format '{{ index .Config.Labels "org.moneytracker.inputs" }}' "$1" 2>/dev/null || true
}

build_base() {
  local want; want="$(inputs_hash "$0")"
  if [[ "$(image_label "$BASE_IMAGE")" == "$want" ]]; then
    log "$BASE_IMAGE is up to date"; return 0
  fi
  command -v debootstrap >/dev/null || { log "debootstrap is missing: apt-get install -y debootstrap"; exit 1; }
  local dir; dir="$(mktemp -d /var/tmp/moneytracker-rootfs.XXXXXX)"
  log "debootstrap $SUITE into $dir (about 30 s)"
  if ! debootstrap --variant=minbase --include=ca-certificates "$SUITE" "$dir" "$MIRROR" >"$dir.log" 2>&1; then
    tail -20 "$dir.log" >&2; rm -rf "$dir" "$dir.log"; log "debootstrap failed"; exit 1
  fi
  # Smaller image: no apt lists, no docs; apt keeps working (apt-get update fetches lists).
  rm -rf "$dir"/var/lib/apt/lists/* "$dir"/var/cache/apt/*.bin "$dir"/usr/share/doc/* "$dir"/usr/share/man/*
  tar -C "$dir" -c . | docker import \
    -c 'ENV container=docker' -c 'CMD ["/bin/bash"]' \
    -c "LABEL org.moneytracker.inputs=$want" - "$BASE_IMAGE" >/dev/null
  rm -rf "$dir" "$dir.log"
  log "built $BASE_IMAGE"
}

build_testhost() {
  build_base
  local ctx="$ROOT/molecule/shared/testhost"
  local want; want="$(inputs_hash "$0" "$ctx/Dockerfile")"
  if [[ "$(image_label "$TESTHOST_IMAGE")" == "$want" ]]; then
    log "$TESTHOST_IMAGE is up to date"; return 0
  fi
  docker build -q --build-arg "BASE_IMAGE=$BASE_IMAGE" --label "org.moneytracker.inputs=$want" \
    -t "$TESTHOST_IMAGE" "$ctx" >/dev/null
  log "built $TESTHOST_IMAGE"
}

case "${1:-}" in
  base) build_base ;;
  testhost) build_testhost ;;
  *) echo "usage: $0 base|testhost" >&2; exit 2 ;;
esac
