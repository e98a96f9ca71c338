#!/usr/bin/env bash
# Build the images the monitoring tests deploy with the monitoring role (no registry needed):
#   moneytracker-test/cadvisor-standin:1.0   TEST DOUBLE for cAdvisor (python3 http server; see its Dockerfile)
#   moneytracker-test/prometheus:debian13    Prometheus from Debian 13's package (real, not the default pin)
#   moneytracker-test/node-exporter:debian13 node_exporter from Debian 13's package (real, not the default pin)
#
#   examples/monitoring/build.sh [--local-base] [--save DIR] [--no-cache]
#
#   --local-base  build on moneytracker-local/debian:trixie (made by scripts/build-images.sh base)
#                 instead of the public debian:trixie-slim: for machines with no registry.
#   --save DIR    also write one `docker save` tarball per image (DIR/moneytracker-test-cadvisor-standin-1.0.tar
#                 ...), rewritten only when the image ID changed: the monitoring role's archive source.
#   --no-cache    rebuild every image without Docker's layer cache (what a clean machine does).
#
# Env: DEBIAN_IMAGE (base image; default debian:trixie-slim).
# An image is skipped when its label org.moneytracker.inputs equals the hash of its build context's
# files, its build args and its base image's ID, so a rerun takes seconds.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
DEBIAN_IMAGE="${DEBIAN_IMAGE:-debian:trixie-slim}"
LABEL=org.moneytracker.inputs
# tag  build context (under examples/monitoring/)
IMAGES=(
  "moneytracker-test/cadvisor-standin:1.0 cadvisor-standin"
  "moneytracker-test/prometheus:debian13 prometheus"
  "moneytracker-test/node-exporter:debian13 node-exporter"
)

log() { printf '[monitoring-build] %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

# shellcheck source=../../scripts/lib/image-build.sh
source "$ROOT/scripts/lib/image-build.sh"
parse_build_args "$@"
require_docker

if $local_base; then
  "$ROOT/scripts/build-images.sh" base
  DEBIAN_IMAGE="${MONEYTRACKER_BASE_IMAGE:-moneytracker-local/debian:trixie}"
fi

inputs_hash() {  # CONTEXT: its files, the base image name and ID
  {
    (cd "$1" && find . -type f ! -name '*.pyc' ! -path '*/__pycache__/*' -print0 | LC_ALL=C sort -z | xargs -0 sha256sum)
    echo "base $DEBIAN_IMAGE $(image_id "$DEBIAN_IMAGE")"
  } | sha256sum | cut -c1-16
}

total_start=$SECONDS built=0 skipped=0
for entry in "${IMAGES[@]}"; do
  read -r tag ctx <<<"$entry"
  want="$(inputs_hash "$HERE/$ctx")"
  if ! $no_cache && [[ "$(docker image inspect --format "{{ index .Config.Labels \"$LABEL\" }}" "$tag" 2>/dev/null || true)" == "$want" ]]; then
    log "up to date: $tag"; skipped=$((skipped + 1)); continue
  fi
  args=(build -q --label "$LABEL=$want" --build-arg "BASE_IMAGE=$DEBIAN_IMAGE" -t "$tag")
  $no_cache && args+=(--no-cache)
  start=$SECONDS
  if ! out="$(docker "${args[@]}" "$HERE/$ctx" 2>&1)"; then
    printf '%s\n' "$out" | grep -v -E 'legacy builder is deprecated|Install the buildx|docs.docker.com/go/buildx|^ *$' | tail -40 >&2
    die "FAILED: $tag"
  fi
  log "built: $tag in $((SECONDS - start))s ($(docker image inspect --format '{{.Size}}' "$tag" | awk '{printf "%.0fMB", $1/1e6}'))"
  built=$((built + 1))
done
log "done in $((SECONDS - total_start))s: $built built, $skipped up to date"

if [[ -n "$save_dir" ]]; then
  tags=()
  for entry in "${IMAGES[@]}"; do read -r tag _ <<<"$entry"; tags+=("$tag"); done
  save_images "$save_dir" "${tags[@]}"
fi
