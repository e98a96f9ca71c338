# Shared by the image build scripts (examples/*/build.sh): their options, the Docker checks, the
# one-build-at-a-time lock and `--save`. Source it after defining log() and die().
#   parse_build_args "$@"   sets local_base, save_dir, no_cache (--local-base, --save DIR, --no-cache, --help)
#   require_docker          the CLI and the engine answer, then take the machine-wide build lock
#   image_id TAG / size_of TAG
#   save_images DIR TAG...  one `docker save` tarball per image, rewritten only when its image ID changed

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

save_images() {
  local dir="$1" tag file want have; shift
  mkdir -p "$dir"
  for tag in "$@"; do
    file="$dir/${tag//[\/:]/-}.tar"
    want="$(image_id "$tag")"; want="${want#sha256:}"
    have=""
    [[ -f "$file" ]] && have="$(tar -xOf "$file" manifest.json 2>/dev/null | grep -o '"Config":"[^"]*"' | grep -o '[0-9a-f]\{64\}' | head -1 || true)"
    if [[ -n "$have" && "$have" == "$want" ]]; then
      log "kept: $file (image unchanged)"; continue
    fi
    docker save -o "$file.tmp" "$tag"
    chmod 0644 "$file.tmp"
    mv -f "$file.tmp" "$file"
    log "saved: $file ($(du -m "$file" | cut -f1)MB)"
  done
}
