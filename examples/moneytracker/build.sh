#!/usr/bin/env bash
# Build the MoneyTracker reference images:
#   moneytracker/backend:1.0.0  :2.0.0  :2.0.1 (patch, same schema)  :2.0.1-unready (test double: never
#   ready)  :2.1.0-broken (test double: its migration fails)
#   moneytracker/frontend:1.0.0  :1.0.1 (the same files, another image: a frontend release)
#   moneytracker/edge:1.0.0  :1.0.1 (nginx from the base image, no site: the deploy's edge)
#   moneytracker/postgres:17 (Debian 13's postgresql-17 + pgbackrest: app_database: postgres)
#
#   examples/moneytracker/build.sh [--local-base] [--save DIR] [--no-cache]
#
#   --local-base  build on moneytracker-local/debian:trixie (made by scripts/build-images.sh base)
#                 instead of the public python/debian/nginx images: for machines with no registry.
#   --save DIR    also write one `docker save` tarball per image (DIR/moneytracker-backend-1.0.0.tar
#                 ...), rewritten only when the image ID changed: how images reach air-gapped hosts.
#   --no-cache    rebuild every image, without Docker's layer cache for the first image of each
#                 build context (what a clean machine does; to measure it).
#
# Env: PYTHON_IMAGE, DEBIAN_IMAGE, NGINX_IMAGE (base images; public defaults), SOURCE_URL (OCI label),
#      BUILD_CA_CERTS (PEM file of extra CAs pip must trust inside the build; default: the host's
#      /usr/local/share/ca-certificates/*.crt, if any; set it empty to pass none).
# An image whose label org.moneytracker.inputs equals the hash of its inputs (files, build args,
# base image ID) is skipped, so a rerun takes seconds.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
PYTHON_IMAGE="${PYTHON_IMAGE:-python:3.13-slim-trixie}"
DEBIAN_IMAGE="${DEBIAN_IMAGE:-debian:trixie-slim}"
NGINX_IMAGE="${NGINX_IMAGE:-nginx:1.27-bookworm}"
SOURCE_URL="${SOURCE_URL:-https://example.invalid/moneytracker}"
BACKEND_RELEASES=(1.0.0 2.0.0 2.0.1 2.0.1-unready 2.1.0-broken)
FRONTEND_VERSIONS=(1.0.0 1.0.1)
EDGE_VERSIONS=(1.0.0 1.0.1)
POSTGRES_VERSIONS=(17)
LABEL=org.moneytracker.inputs

log() { printf '[moneytracker-build] %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

# shellcheck source=../../scripts/lib/image-build.sh
source "$ROOT/scripts/lib/image-build.sh"
parse_build_args "$@"
require_docker

if $local_base; then
  "$ROOT/scripts/build-images.sh" base
  PYTHON_IMAGE="${MONEYTRACKER_BASE_IMAGE:-moneytracker-local/debian:trixie}"
  DEBIAN_IMAGE="$PYTHON_IMAGE"
  NGINX_IMAGE="$PYTHON_IMAGE"
fi

if [[ -z "${BUILD_CA_CERTS+set}" ]]; then
  extra_ca="$(cat /usr/local/share/ca-certificates/*.crt 2>/dev/null || true)"
elif [[ -n "$BUILD_CA_CERTS" ]]; then
  extra_ca="$(cat "$BUILD_CA_CERTS")"
else
  extra_ca=""
fi

# Hash of a build context's files (what .dockerignore lets in), the build args and the base
# images' IDs (their names when they are not present locally).
inputs_hash() {
  local ctx="$1"; shift
  {
    (cd "$ctx" && find . -type f ! -path '*/__pycache__/*' ! -name '*.pyc' ! -path './*.egg-info/*' \
        ! -path './build/*' ! -path './dist/*' ! -path './.venv/*' ! -path './tests/*' \
        ! -name '*.gz' ! -name '*.br' -print0 | LC_ALL=C sort -z | xargs -0 sha256sum)
    local arg
    for arg in "$@"; do
      echo "arg $arg"
      case "$arg" in *_IMAGE=*) echo "id $(image_id "${arg#*=}")" ;; esac
    done
  } | sha256sum | cut -c1-16
}

built=() skipped=() fresh_contexts=()
build() {  # build TAG CONTEXT ARG...
  local tag="$1" ctx="$2"; shift 2
  local want; want="$(inputs_hash "$ctx" "$@")"
  if ! $no_cache && [[ "$(docker image inspect --format "{{ index .Config.Labels \"$LABEL\" }}" "$tag" 2>/dev/null || true)" == "$want" ]]; then
    log "up to date: $tag ($(size_of "$tag"))"
    skipped+=("$tag"); return 0
  fi
  local args=(build -q --label "$LABEL=$want" -t "$tag")
  # --no-cache: the first image of each context ignores the layer cache; the other releases then
  # share the layers just built, exactly as on a clean machine.
  if $no_cache && [[ " ${fresh_contexts[*]} " != *" $ctx "* ]]; then
    args+=(--no-cache); fresh_contexts+=("$ctx")
  fi
  local a
  for a in "$@"; do args+=(--build-arg "$a"); done
  [[ "$ctx" == */backend ]] && args+=(--build-arg "EXTRA_CA_CERTS=$extra_ca")
  local start=$SECONDS out
  if ! out="$(docker "${args[@]}" "$ctx" 2>&1)"; then
    printf '%s\n' "$out" | grep -v -E 'legacy builder is deprecated|Install the buildx|docs.docker.com/go/buildx|^ *$' | tail -40 >&2
    die "FAILED: $tag"
  fi
  log "built: $tag in $((SECONDS - start))s ($(size_of "$tag"))"
  built+=("$tag")
}

total_start=$SECONDS
for release in "${BACKEND_RELEASES[@]}"; do
  build "moneytracker/backend:$release" "$HERE/backend" \
    "PYTHON_IMAGE=$PYTHON_IMAGE" "RELEASE=$release" "SOURCE_URL=$SOURCE_URL"
done
for version in "${FRONTEND_VERSIONS[@]}"; do
  build "moneytracker/frontend:$version" "$HERE/frontend" \
    "DEBIAN_IMAGE=$DEBIAN_IMAGE" "NGINX_IMAGE=$NGINX_IMAGE" "VERSION=$version" "SOURCE_URL=$SOURCE_URL"
done
for version in "${EDGE_VERSIONS[@]}"; do
  build "moneytracker/edge:$version" "$HERE/edge" "NGINX_IMAGE=$NGINX_IMAGE" "VERSION=$version" "SOURCE_URL=$SOURCE_URL"
done
for version in "${POSTGRES_VERSIONS[@]}"; do
  build "moneytracker/postgres:$version" "$HERE/postgres" "DEBIAN_IMAGE=$DEBIAN_IMAGE" "VERSION=$version" "SOURCE_URL=$SOURCE_URL"
done
log "done in $((SECONDS - total_start))s: ${#built[@]} built, ${#skipped[@]} up to date"

if [[ -n "$save_dir" ]]; then
  save_images "$save_dir" "${BACKEND_RELEASES[@]/#/moneytracker/backend:}" "${FRONTEND_VERSIONS[@]/#/moneytracker/frontend:}" \
    "${EDGE_VERSIONS[@]/#/moneytracker/edge:}" "${POSTGRES_VERSIONS[@]/#/moneytracker/postgres:}"
fi
