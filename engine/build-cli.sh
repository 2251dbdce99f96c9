#!/usr/bin/env bash
# Build the Pulumi CLI from the Go module proxy into a cache folder keyed by its version, once per
# machine. The installer (get.pulumi.com) is out of reach where only package registries are, but the
# proxy serves the CLI's module. `go install …/cmd/pulumi@v` is refused (the module has replace
# directives), so a small wrapper module repeats the one non-local replace and `go build`s the CLI.
# Measured on 2 cores: cold ≈ 8–13 min and ≈ 2 GB memory; cached: well under a second.
#
# A cold build says what it is doing: a line per phase (download, dependency list, compile), and
# a heartbeat every QVL_ENGINE_HEARTBEAT_S seconds (30) with the elapsed time, the modules
# downloaded or packages compiled so far and the sizes of Go's module and build caches. Go's own
# output goes to a log (its last lines are printed when the build fails).
#
# Usage: engine/build-cli.sh            prints the path of the built binary (progress on stderr)
# Env:   PULUMI_CLI_VERSION (default below), QVL_ENGINE_CACHE (default ~/.cache/qwen-vl-deploy/engine),
#        QVL_ENGINE_HEARTBEAT_S (default 30)
set -euo pipefail

version="${PULUMI_CLI_VERSION:-v3.274.1}"
cache="${QVL_ENGINE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/qwen-vl-deploy/engine}"
heartbeat_s="${QVL_ENGINE_HEARTBEAT_S:-30}"
dest="$cache/pulumi-$version"
bin="$dest/bin/pulumi"
log="$cache/build-$version.log"

if [[ -x "$bin" ]] && "$bin" version >/dev/null 2>&1; then
  echo "$bin"
  exit 0
fi

command -v go >/dev/null || {
  echo "engine: Go is needed to build the Pulumi CLI (https://go.dev/dl/; Debian: golang-go ≥ 1.24)" >&2
  exit 2
}
[[ "$heartbeat_s" =~ ^[1-9][0-9]*$ ]] || {
  echo "engine: QVL_ENGINE_HEARTBEAT_S=$heartbeat_s must be a whole number of seconds ≥ 1" >&2
  exit 2
}

mkdir -p "$cache"
# One build at a time per machine: a second caller waits for the first, then finds the binary.
exec 9>"$cache/.build.lock"
if ! flock -n 9; then
  echo "engine: another build of the Pulumi CLI is running on this machine (progress: $log); waiting for it" >&2
  flock 9
fi
if [[ -x "$bin" ]] && "$bin" version >/dev/null 2>&1; then
  echo "$bin"
  exit 0
fi

work="$(mktemp -d "$cache/build.XXXXXX")"
beat=""
cleanup() {
  # Out of the job table first: bash would report the killed job ("Terminated") on stderr.
  if [[ -n "$beat" ]]; then
    disown "$beat" 2>/dev/null || true
    kill "$beat" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT
cd "$work"
gover="$(go env GOVERSION)"
modcache="$(go env GOMODCACHE)"
buildcache="$(go env GOCACHE)"
cat >go.mod <<MOD
module qwen-vl-deploy/engine-build

go ${gover#go}

// The CLI module's own non-local replace (pkg/go.mod); its local ones (sdk => ../sdk) are served as
// the matching sdk/v3 version instead.
replace github.com/atotto/clipboard => github.com/tgummerer/clipboard v0.0.0-20241001131231-d02d263e614e
MOD
: >"$log"
start=$SECONDS
echo "engine: building the Pulumi CLI $version with $gover into $dest (cold: ≈ 8–13 min on 2 cores; Go's output: $log)" >&2

# A cache's size in MiB; 0 before Go has made it.
mib() {
  local n
  n="$(du -sm "$1" 2>/dev/null | cut -f1)" || true
  echo "${n:-0}"
}
# phase LABEL COUNTER TEXT: says TEXT, and leaves the heartbeat (a background loop) its short
# label and what counts its progress (modules, packages or none).
phase() {
  printf '%s\n%s\n' "$1" "$2" >"$work/phase"
  echo "engine: [$((SECONDS - start)) s] $3" >&2
}
heartbeat() {
  # Ends with the build, also when the build is killed outright (no trap runs then). Its sleep
  # holds none of the caller's pipes: a sleep outliving a killed heartbeat must not keep the
  # caller waiting for end of file.
  while sleep "$heartbeat_s" >/dev/null 2>&1 && kill -0 "$$" 2>/dev/null; do
    local name counter done_ total=""
    { read -r name && read -r counter; } <"$work/phase" 2>/dev/null || continue
    case "$counter" in
      modules) done_="$(grep -c '^go: downloading ' "$log" 2>/dev/null || true) modules" ;;
      packages)
        done_="$(grep -cv '^go: ' "$work/build.out" 2>/dev/null || true)"
        done_="${done_:-0}"
        [[ -s "$work/deps" ]] && total="/$(wc -l <"$work/deps")"
        done_="$done_$total packages"
        ;;
      *) done_="" ;;
    esac
    echo "engine: [$((SECONDS - start)) s] $name${done_:+: $done_}; module cache $(mib "$modcache") MiB, build cache $(mib "$buildcache") MiB" >&2
  done
}
failed() {
  echo "engine: $1 failed after $((SECONDS - start)) s; the last lines of Go's output (all of it: $log):" >&2
  tail -n 25 "$log" | sed 's/^/  /' >&2
  exit 1
}

# Without the lock's descriptor: a heartbeat outliving a killed build must not hold the lock.
heartbeat 9>&- >/dev/null &
beat=$!

phase downloading modules "downloading the CLI's modules from the Go module proxy"
GOFLAGS=-mod=mod go get "github.com/pulumi/pulumi/pkg/v3/cmd/pulumi@$version" "github.com/pulumi/pulumi/sdk/v3@$version" >>"$log" 2>&1 ||
  failed "go get"

phase listing none "listing the packages to compile"
# Only for the heartbeat's "n/total": a failure here costs the total, not the build.
GOFLAGS=-mod=mod go list -deps github.com/pulumi/pulumi/pkg/v3/cmd/pulumi >"$work/deps" 2>>"$log" || : >"$work/deps"

ndeps="$(wc -l <"$work/deps")"
if ((ndeps > 0)); then
  phase compiling packages "compiling the CLI ($ndeps packages; those already in Go's build cache are not compiled again)"
else
  phase compiling packages "compiling the CLI"
fi
mkdir -p "$dest.tmp/bin"
# -v prints each package as it is compiled: the heartbeat counts them.
if ! GOFLAGS=-mod=mod go build -v -trimpath \
  -ldflags "-s -w -X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=$version" \
  -o "$dest.tmp/bin/pulumi" github.com/pulumi/pulumi/pkg/v3/cmd/pulumi >"$work/build.out" 2>&1; then
  cat "$work/build.out" >>"$log"
  failed "go build"
fi
cat "$work/build.out" >>"$log"
rm -rf "$dest"
mv "$dest.tmp" "$dest"
echo "engine: built $("$bin" version) in $((SECONDS - start)) s ($(grep -cv '^go: ' "$work/build.out" || true) packages compiled; module cache $(mib "$modcache") MiB, build cache $(mib "$buildcache") MiB)" >&2
echo "$bin"
