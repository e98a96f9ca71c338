# Shared by the image build scripts (examples/*/build.sh): their options, the Docker checks, the
# one-build-at-a-time lock and `--save`. Source it after defining log() and die().
#   parse_build_args "$@"   sets local_base, save_dir, no_cache (--local-base, --save DIR, --no-cache, --help)
#   require_docker          the CLI and the engine answer, then take the machine-wide build lock
#   image_id TAG / size_of TAG
#   build_and_save DIR "TAG CONTEXT"...  the rest of a simple build script: the Docker checks, the
#                           local base (--local-base), build_contexts, --save
#   build_contexts DIR "TAG CONTEXT"...  build each DIR/CONTEXT as TAG on $DEBIAN_IMAGE, skipped when
#                           its label org.moneytracker.inputs equals the hash of the context's files
#                           and the base image's name and ID (so a rerun takes seconds)
#   save_images DIR REF...  one `docker save` tarball per image, rewritten only when its image ID changed
#   archive_name REF / digest_tag REF   the naming rules the roles use (see below)

parse_build_args() {
  local_base=false save_dir="" no_cache=false
  while (($#)); do
    case "$1" in
      --local-base) local_base=true ;;
      --save) [[ $# -ge 2 ]] || die "--save needs a directory"; save_dir="$2"; shift ;;
      --save=*) save_dir="${1#--save=}" ;;
      --no-cache) no_cache=true ;;
      -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
      *) die "unknown argument: $1 (see --help)" ;;
    esac
    shift
  done
}

require_docker() {
  command -v docker >/dev/null || die "docker CLI not found"
  docker info >/dev/null 2>&1 || die "the Docker engine does not answer (is dockerd running?)"
  # One build at a time on this machine (the Makefile, Molecule and a developer may all build).
  exec 9>"${TMPDIR:-/tmp}/moneytracker-build.lock"
  flock 9
}

image_id() { docker image inspect --format '{{.Id}}' "$1" 2>/dev/null || true; }
size_of() { docker image inspect --format '{{.Size}}' "$1" | awk '{printf "%.0fMB", $1/1e6}'; }

context_hash() {  # CONTEXT: its files, the base image name and ID
  {
    (cd "$1" && find . -type f ! -name '*.pyc' ! -path '*/__pycache__/*' -print0 | LC_ALL=C sort -z | xargs -0 sha256sum)
    echo "base $DEBIAN_IMAGE $(image_id "$DEBIAN_IMAGE")"
  } | sha256sum | cut -c1-16
}

build_contexts() {
  local dir="$1" entry tag ctx want start total_start=$SECONDS built=0 skipped=0 out
  local -a args
  shift
  for entry in "$@"; do
    read -r tag ctx <<<"$entry"
    want="$(context_hash "$dir/$ctx")"
    if ! $no_cache && [[ "$(docker image inspect --format '{{ index .Config.Labels "org.moneytracker.inputs" }}' "$tag" 2>/dev/null || true)" == "$want" ]]; then
      log "up to date: $tag"; skipped=$((skipped + 1)); continue
    fi
    args=(build -q --label "org.moneytracker.inputs=$want" --build-arg "BASE_IMAGE=$DEBIAN_IMAGE" -t "$tag")
    $no_cache && args+=(--no-cache)
    start=$SECONDS
    if ! out="$(docker "${args[@]}" "$dir/$ctx" 2>&1)"; then
      printf '%s\n' "$out" | grep -v -E 'legacy builder is deprecated|Install the buildx|docs.docker.com/go/buildx|^ *$' | tail -40 >&2
      die "FAILED: $tag"
    fi
    log "built: $tag in $((SECONDS - start))s ($(size_of "$tag"))"
    built=$((built + 1))
  done
  log "done in $((SECONDS - total_start))s: $built built, $skipped up to date"
}

build_and_save() {
  local dir="$1" entry tag root
  local -a tags=()
  shift
  root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
  require_docker
  if $local_base; then
    "$root/scripts/build-images.sh" base
    DEBIAN_IMAGE="${MONEYTRACKER_BASE_IMAGE:-moneytracker-local/debian:trixie}"
  fi
  build_contexts "$dir" "$@"
  if [[ -n "$save_dir" ]]; then
    for entry in "$@"; do read -r tag _ <<<"$entry"; tags+=("$tag"); done
    save_images "$save_dir" "${tags[@]}"
  fi
}

# The tarball of REF is named as the filter moneytracker.deploy.image_archive_name names it: '/', ':'
# and '@' become '-', plus .tar (name@sha256:<hex> -> name-sha256-<hex>.tar). The same rule in both
# places; tests/unit/plugins/filter/test_image_filters.py checks that they agree.
archive_name() { local ref="$1"; printf '%s.tar\n' "${ref//[\/:@]/-}"; }
# name@sha256:<hex> -> name:sha256-<hex> (filter moneytracker.deploy.image_digest_tag); a tag ref as is.
# `docker load` restores tags, never repo digests: an image pinned by digest travels under this tag.
digest_tag() {
  local ref="$1"
  if [[ "$ref" =~ ^([^@]+)@sha256:([0-9a-f]{64})$ ]]; then
    printf '%s:sha256-%s\n' "${BASH_REMATCH[1]}" "${BASH_REMATCH[2]}"
  else
    printf '%s\n' "$ref"
  fi
}

# REF is name:tag or name@sha256:<hex>. A digest pin is saved under digest_tag (so a host can find
# it after `docker load`) and only when the digest names this image here: a repo digest the engine
# resolves (pulled by digest), or the image ID itself (an engine without a registry knows no other
# digest of a locally built image, and its classic image store does not resolve name@<ID>).
save_images() {
  local dir="$1" ref file want have save_ref; shift
  mkdir -p "$dir"
  for ref in "$@"; do
    file="$dir/$(archive_name "$ref")"
    want="$(image_id "$ref")"
    save_ref="$ref"
    if [[ "$ref" == *@sha256:* ]]; then
      if [[ -z "$want" && "$(image_id "sha256:${ref##*@sha256:}")" == "sha256:${ref##*@sha256:}" ]]; then
        want="sha256:${ref##*@sha256:}"
      fi
      [[ -n "$want" ]] || die "$ref: no image here has that repo digest or ID"
      save_ref="$(digest_tag "$ref")"
      docker tag "$want" "$save_ref"
    fi
    [[ -n "$want" ]] || die "$ref: no such image"
    want="${want#sha256:}"
    have=""
    if [[ -f "$file" ]] && tar -xOf "$file" manifest.json 2>/dev/null | grep -qF "\"$save_ref\""; then
      have="$(tar -xOf "$file" manifest.json 2>/dev/null | grep -o '"Config":"[^"]*"' | grep -o '[0-9a-f]\{64\}' | head -1 || true)"
    fi
    if [[ -n "$have" && "$have" == "$want" ]]; then
      log "kept: $file (image unchanged)"; continue
    fi
    docker save -o "$file.tmp" "$save_ref"
    chmod 0644 "$file.tmp"
    mv -f "$file.tmp" "$file"
    log "saved: $file ($(du -m "$file" | cut -f1)MB)"
  done
}
