#!/usr/bin/env bash
# Build the Pulumi CLI from the Go module proxy into a cache folder keyed by its version, once per
# machine. The installer (get.pulumi.com) is out of reach where only package registries are, but the
# proxy serves the CLI's module. `go install …/cmd/pulumi@v` is refused (the module has replace
# directives), so a small wrapper module repeats the one non-local replace and `go build`s the CLI.
# Measured on 2 cores: cold ≈ 10–13 min and ≈ 2 GB memory; cached: well under a second.
#
# Usage: engine/build-cli.sh            prints the path of the built binary
# Env:   PULUMI_CLI_VERSION (default below), QVL_ENGINE_CACHE (default ~/.cache/qwen-vl-deploy/engine)
set -euo pipefail

version="${PULUMI_CLI_VERSION:-v3.274.1}"
cache="${QVL_ENGINE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/qwen-vl-deploy/engine}"
dest="$cache/pulumi-$version"
bin="$dest/bin/pulumi"

if [[ -x "$bin" ]] && "$bin" version >/dev/null 2>&1; then
  echo "$bin"
  exit 0
fi

command -v go >/dev/null || {
  echo "engine: Go is needed to build the Pulumi CLI (https://go.dev/dl/; Debian: golang-go ≥ 1.24)" >&2
  exit 2
}

mkdir -p "$cache"
# One build at a time per machine: a second caller waits for the first, then finds the binary.
exec 9>"$cache/.build.lock"
flock 9
if [[ -x "$bin" ]] && "$bin" version >/dev/null 2>&1; then
  echo "$bin"
  exit 0
fi

work="$(mktemp -d "$cache/build.XXXXXX")"
trap 'rm -rf "$work"' EXIT
cd "$work"
gover="$(go env GOVERSION)"
cat >go.mod <<MOD
module qwen-vl-deploy/engine-build

go ${gover#go}

// The CLI module's own non-local replace (pkg/go.mod); its local ones (sdk => ../sdk) are served as
// the matching sdk/v3 version instead.
replace github.com/atotto/clipboard => github.com/tgummerer/clipboard v0.0.0-20241001131231-d02d263e614e
MOD
echo "engine: building the Pulumi CLI $version with $gover into $dest (cold: ≈ 10–13 min on 2 cores)" >&2
start=$SECONDS
GOFLAGS=-mod=mod go get "github.com/pulumi/pulumi/pkg/v3/cmd/pulumi@$version" "github.com/pulumi/pulumi/sdk/v3@$version" >&2
mkdir -p "$dest.tmp/bin"
GOFLAGS=-mod=mod go build -trimpath \
  -ldflags "-s -w -X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=$version" \
  -o "$dest.tmp/bin/pulumi" github.com/pulumi/pulumi/pkg/v3/cmd/pulumi >&2
rm -rf "$dest"
mv "$dest.tmp" "$dest"
echo "engine: built $("$bin" version) in $((SECONDS - start)) s" >&2
echo "$bin"
