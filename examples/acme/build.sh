#!/usr/bin/env bash
# Build the images the tls scenario needs beside the app (no registry needed):
#   moneytracker-test/pebble:debian13   Pebble, an ACME test CA, from Debian 13's package (real ACME)
#   moneytracker-test/testssl:debian13  testssl.sh from Debian 13's package (a real TLS scanner)
#
#   examples/acme/build.sh [--local-base] [--save DIR] [--no-cache]
#
#   --local-base  build on moneytracker-local/debian:trixie (made by scripts/build-images.sh base)
#                 instead of the public debian:trixie-slim: for machines with no registry.
#   --save DIR    also write one `docker save` tarball per image, rewritten only when the image ID
#                 changed: the tls scenario loads them into its test host.
#   --no-cache    rebuild every image without Docker's layer cache (what a clean machine does).
#
# Env: DEBIAN_IMAGE (base image; default debian:trixie-slim). Cached like examples/monitoring/build.sh.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
DEBIAN_IMAGE="${DEBIAN_IMAGE:-debian:trixie-slim}"
# tag  build context (under examples/acme/)
IMAGES=(
  "moneytracker-test/pebble:debian13 pebble"
  "moneytracker-test/testssl:debian13 testssl"
)

log() { printf '[acme-build] %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

# shellcheck source=../../scripts/lib/image-build.sh
source "$HERE/../../scripts/lib/image-build.sh"
parse_build_args "$@"
build_and_save "$HERE" "${IMAGES[@]}"
