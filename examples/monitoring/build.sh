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
DEBIAN_IMAGE="${DEBIAN_IMAGE:-debian:trixie-slim}"
# tag  build context (under examples/monitoring/)
IMAGES=(
  "moneytracker-test/cadvisor-standin:1.0 cadvisor-standin"
  "moneytracker-test/prometheus:debian13 prometheus"
  "moneytracker-test/node-exporter:debian13 node-exporter"
)

log() { printf '[monitoring-build] %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

# shellcheck source=../../scripts/lib/image-build.sh
source "$HERE/../../scripts/lib/image-build.sh"
parse_build_args "$@"
build_and_save "$HERE" "${IMAGES[@]}"
