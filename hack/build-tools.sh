#!/usr/bin/env bash
# Builds the local Kubernetes test bed (kube-apiserver, kube-controller-manager, kube-scheduler,
# kubectl, etcd, kwok, kwokctl, kustomize), the real node's kubelet and kube-proxy, cluster DNS
# (CoreDNS), Argo CD (one multi-call binary: application controller, repo-server,
# ApplicationSet controller), actionlint, the Pulumi CLI and Kubernetes provider, and the log
# store and shipper (VictoriaLogs, an OpenTelemetry Collector) from Go module sources, through
# the Go module proxy only.
#
# Each tool is built once into
#   ${XDG_CACHE_HOME:-~/.cache}/assistente-digital/<tool>-<version>-<key>/bin/
# where <key> hashes the wrapper module (go.mod + go.sum) and the Go version, so a rebuild only
# happens when a pin changes. The wrapper modules live in tools/go/<module>/ and are committed;
# k8s-node (kubelet, kube-proxy) is built from the same module as k8s, into a cache of its own, so
# the control plane and the node always come from the same pinned sources.
#
# Usage: hack/build-tools.sh [k8s|k8s-node|etcd|kwok|kustomize|coredns|argocd|actionlint|pulumi|
#                            pulumi-kubernetes|victorialogs|otelcol|all]...
#        (default and `all`: the control plane, actionlint and the log store and shipper; the
#        real node's tools (k8s-node, coredns), Argo CD and the Pulumi tools are built on demand
#        by the suites that need them; the Pulumi provider alone takes ~10 min and ~4.3 GB of
#        memory)
#        hack/build-tools.sh --bin-dir TOOL   prints the cached bin directory of TOOL
#        hack/build-tools.sh --regen k8s      regenerates tools/go/k8s/go.mod from the pin
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=hack/versions.env
source "$repo/hack/versions.env"

export GOPROXY=${GOPROXY:-https://proxy.golang.org}
export GOFLAGS=-mod=mod
export GOTOOLCHAIN=${GOTOOLCHAIN:-local}
export CGO_ENABLED=0
cache_root=${XDG_CACHE_HOME:-$HOME/.cache}/assistente-digital

log() { printf '[build-tools] %s\n' "$*" >&2; }

tool_version() {
  case "$1" in
    k8s|k8s-node) echo "$K8S_VERSION" ;;
    coredns) echo "$COREDNS_VERSION" ;;
    etcd) echo "$ETCD_VERSION" ;;
    kwok) echo "$KWOK_VERSION" ;;
    kustomize) echo "$KUSTOMIZE_VERSION" ;;
    argocd) echo "$ARGOCD_VERSION" ;;
    actionlint) echo "$ACTIONLINT_VERSION" ;;
    pulumi) echo "$PULUMI_VERSION" ;;
    pulumi-kubernetes) echo "$PULUMI_KUBERNETES_VERSION" ;;
    victorialogs) echo "$VICTORIALOGS_VERSION" ;;
    otelcol) echo "$OTELCOL_VERSION" ;;
    *) log "unknown tool: $1"; exit 2 ;;
  esac
}

# The wrapper module a tool is built from.
tool_module() {
  case "$1" in
    k8s-node) echo k8s ;;
    *) echo "$1" ;;
  esac
}

tool_bin_dir() {
  local tool=$1 version key module
  version=$(tool_version "$tool")
  module=$(tool_module "$tool")
  # A wrapper module may carry its own main package (coredns picks its plugins in main.go).
  key=$( { cat "$repo/tools/go/$module/go.mod" "$repo/tools/go/$module/go.sum" 2>/dev/null
      find "$repo/tools/go/$module" -maxdepth 1 -name '*.go' -print0 | sort -z | xargs -0r cat
      go env GOVERSION; } | sha256sum | cut -c1-12)
  echo "$cache_root/$tool-$version-$key/bin"
}

# The wrapper module for k8s.io/kubernetes redirects every staging module (required upstream at
# the placeholder v0.0.0) to its published v0.Y.Z tag, and copies the go/godebug lines.
regen_k8s() {
  local dir=$repo/tools/go/k8s staging=v0.${K8S_VERSION#v1.} upstream_mod module
  mkdir -p "$dir"
  upstream_mod=$(go mod download -json "k8s.io/kubernetes@$K8S_VERSION" \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["GoMod"])')
  rm -f "$dir/go.mod" "$dir/go.sum"
  (
    cd "$dir"
    go mod init assistente-digital.invalid/tools/k8s >/dev/null 2>&1
    go mod edit -go="$(sed -n 's/^go //p' "$upstream_mod")"
    go mod edit -godebug="$(sed -n 's/^godebug //p' "$upstream_mod")"
    for module in $(sed -n 's|^[[:space:]]*\(k8s\.io/[^ ]*\) => \./staging/src/.*|\1|p' "$upstream_mod"); do
      go mod edit "-replace=$module=$module@$staging"
    done
    go get -tool "k8s.io/kubernetes/cmd/kube-apiserver@$K8S_VERSION" \
      "k8s.io/kubernetes/cmd/kube-controller-manager@$K8S_VERSION" \
      "k8s.io/kubernetes/cmd/kube-scheduler@$K8S_VERSION" \
      "k8s.io/kubernetes/cmd/kubectl@$K8S_VERSION" \
      "k8s.io/kubernetes/cmd/kubelet@$K8S_VERSION" \
      "k8s.io/kubernetes/cmd/kube-proxy@$K8S_VERSION"
  )
}

# Argo CD's go.mod pins Kubernetes and a few others with replace lines (module => module@version);
# a replace only applies in the main module, so the wrapper repeats every one of them.
regen_argocd() {
  local dir=$repo/tools/go/argocd upstream_mod line
  mkdir -p "$dir"
  upstream_mod=$(go mod download -json "github.com/argoproj/argo-cd/v3@$ARGOCD_VERSION" \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["GoMod"])')
  rm -f "$dir/go.mod" "$dir/go.sum"
  (
    cd "$dir"
    go mod init assistente-digital.invalid/tools/argocd >/dev/null 2>&1
    go mod edit -go="$(sed -n 's/^go //p' "$upstream_mod")"
    sed -n 's|^[[:space:]]*\([^ ]*\) => \([^ .][^ ]*\) \(v[^ ]*\)$|\1=\2@\3|p' "$upstream_mod" \
      | while read -r line; do go mod edit "-replace=$line"; done
    go get -tool "github.com/argoproj/argo-cd/v3/cmd@$ARGOCD_VERSION"
  )
}

# Simple wrapper: one module, its main packages recorded as tool directives.
regen_simple() {
  local tool=$1 module_path=$2; shift 2
  local dir=$repo/tools/go/$tool
  mkdir -p "$dir"
  rm -f "$dir/go.mod" "$dir/go.sum"
  (
    cd "$dir"
    go mod init "assistente-digital.invalid/tools/$tool" >/dev/null 2>&1
    go get -tool "$@"
    go mod edit -go="$(go list -m -f '{{.GoVersion}}' "$module_path")"
  )
}

# The CLI's go.mod points sdk/v3 at a sibling directory and pins two modules with replace lines;
# replace lines of a dependency are ignored, so the wrapper repeats them: sdk/v3 at the same
# release, the clipboard fork, and the golang.org/x/text pin of the sdk's own go.mod.
regen_pulumi() {
  local dir=$repo/tools/go/pulumi sdk_mod text_pin
  mkdir -p "$dir"
  sdk_mod=$(go mod download -json "github.com/pulumi/pulumi/sdk/v3@$PULUMI_VERSION" \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["GoMod"])')
  text_pin=$(sed -n 's|^replace golang.org/x/text => golang.org/x/text \(v[^ ]*\)$|\1|p' "$sdk_mod")
  rm -f "$dir/go.mod" "$dir/go.sum"
  (
    cd "$dir"
    go mod init assistente-digital.invalid/tools/pulumi >/dev/null 2>&1
    go mod edit "-replace=github.com/pulumi/pulumi/sdk/v3=github.com/pulumi/pulumi/sdk/v3@$PULUMI_VERSION" \
      "-replace=github.com/atotto/clipboard=github.com/tgummerer/clipboard@v0.0.0-20241001131231-d02d263e614e" \
      "-replace=golang.org/x/text=golang.org/x/text@$text_pin"
    go get -tool "github.com/pulumi/pulumi/pkg/v3/cmd/pulumi@$PULUMI_VERSION"
    go mod edit -go="$(sed -n 's/^go //p' "$sdk_mod")"
  )
}

# The provider wrapper holds our own main.go (see its comment); its go.mod points the
# provider's relative sdk/v4 replace at the published module of the same release.
regen_pulumi_kubernetes() {
  local dir=$repo/tools/go/pulumi-kubernetes
  (
    cd "$dir"
    rm -f go.mod go.sum
    go mod init assistente-digital.invalid/tools/pulumi-kubernetes >/dev/null 2>&1
    go mod edit "-replace=github.com/pulumi/pulumi-kubernetes/sdk/v4=github.com/pulumi/pulumi-kubernetes/sdk/v4@v$PULUMI_KUBERNETES_VERSION"
    go get "github.com/pulumi/pulumi-kubernetes/provider/v4@$PULUMI_KUBERNETES_MODULE_VERSION"
    go mod tidy
    go mod edit -go="$(go list -m -f '{{.GoVersion}}' github.com/pulumi/pulumi-kubernetes/provider/v4)"
  )
}

# Upstream's build writes the schema (with its version set) and the Terraform mapping next to
# the provider's main package; do the same for our wrapper's main, in a copy of the wrapper so
# the checkout stays clean.
compile_pulumi_kubernetes() {
  local out=$1 module_dir build_dir
  module_dir=$(go list -m -f '{{.Dir}}' github.com/pulumi/pulumi-kubernetes/provider/v4)
  build_dir=$(mktemp -d)
  cp go.mod go.sum main.go "$build_dir/"
  python3 - "$module_dir/cmd/pulumi-resource-kubernetes" "$build_dir" "$PULUMI_KUBERNETES_VERSION" <<'PY'
import json, pathlib, sys
source, target, version = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2]), sys.argv[3]
schema = json.loads((source / "schema.json").read_text())
schema["version"] = version
(target / "schema-embed.json").write_text(json.dumps(schema, separators=(",", ":")))
mapping = json.loads((source / "terraform-mapping.json").read_text())
(target / "terraform-mapping-embed.json").write_text(json.dumps(mapping, separators=(",", ":")))
PY
  (
    cd "$build_dir"
    go build -trimpath \
      -ldflags "-s -w -X github.com/pulumi/pulumi-kubernetes/provider/v4/pkg/version.Version=$PULUMI_KUBERNETES_VERSION" \
      -o "$out/pulumi-resource-kubernetes" .
  )
  rm -rf "$build_dir"
}

# CoreDNS is built from a main package of our own (tools/go/coredns/main.go) that picks the
# plugins, so the module requires CoreDNS as a library.
regen_coredns() {
  local dir=$repo/tools/go/coredns
  rm -f "$dir/go.mod" "$dir/go.sum"
  (
    cd "$dir"
    go mod init assistente-digital.invalid/tools/coredns >/dev/null 2>&1
    go get "github.com/coredns/coredns@$COREDNS_VERSION"
    go mod edit -go="$(go list -m -f '{{.GoVersion}}' github.com/coredns/coredns)"
    go mod tidy
  )
}

# The collector is our own main package (tools/go/otelcol/main.go) over the components it
# imports; the module pins them all to one collector release.
regen_otelcol() {
  local dir=$repo/tools/go/otelcol core=go.opentelemetry.io/collector
  local contrib=github.com/open-telemetry/opentelemetry-collector-contrib
  rm -f "$dir/go.mod" "$dir/go.sum"
  (
    cd "$dir"
    go mod init assistente-digital.invalid/tools/otelcol >/dev/null 2>&1
    go get "$core/otelcol@$OTELCOL_VERSION" "$core/exporter/otlphttpexporter@$OTELCOL_VERSION" \
      "$core/exporter/debugexporter@$OTELCOL_VERSION" "$core/processor/batchprocessor@$OTELCOL_VERSION" \
      "$core/processor/memorylimiterprocessor@$OTELCOL_VERSION" "$core/service@$OTELCOL_VERSION" \
      "$contrib/receiver/filelogreceiver@$OTELCOL_CONTRIB_VERSION" \
      "$contrib/processor/resourceprocessor@$OTELCOL_CONTRIB_VERSION" \
      "$contrib/extension/storage/filestorage@$OTELCOL_CONTRIB_VERSION" \
      "$contrib/extension/healthcheckextension@$OTELCOL_CONTRIB_VERSION"
    go mod tidy
    go mod edit -go="$(go list -m -f '{{if not .Main}}{{.GoVersion}}{{end}}' all | sort -V | tail -1)"
  )
}

regen() {
  case "$1" in
    pulumi) regen_pulumi ;;
    pulumi-kubernetes) regen_pulumi_kubernetes ;;
    k8s) regen_k8s ;;
    etcd) regen_simple etcd go.etcd.io/etcd/server/v3 "go.etcd.io/etcd/server/v3@$ETCD_VERSION" \
      "go.etcd.io/etcd/etcdctl/v3@$ETCD_VERSION" ;;
    kwok) regen_simple kwok sigs.k8s.io/kwok "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION" \
      "sigs.k8s.io/kwok/cmd/kwokctl@$KWOK_VERSION" ;;
    kustomize) regen_simple kustomize sigs.k8s.io/kustomize/kustomize/v5 \
      "sigs.k8s.io/kustomize/kustomize/v5@$KUSTOMIZE_VERSION" ;;
    coredns) regen_coredns ;;
    argocd) regen_argocd ;;
    actionlint) regen_simple actionlint github.com/rhysd/actionlint \
      "github.com/rhysd/actionlint/cmd/actionlint@$ACTIONLINT_VERSION" ;;
    victorialogs) regen_simple victorialogs github.com/VictoriaMetrics/VictoriaLogs \
      "github.com/VictoriaMetrics/VictoriaLogs/app/victoria-logs@$VICTORIALOGS_VERSION" ;;
    otelcol) regen_otelcol ;;
  esac
}

k8s_ldflags() {
  local minor=${K8S_VERSION#v1.}; minor=${minor%%.*}
  local flags="-s -w" pkg
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    flags+=" -X $pkg.gitVersion=$K8S_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
    flags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
  done
  echo "$flags"
}

compile() {
  local tool=$1 out=$2
  cd "$repo/tools/go/$(tool_module "$tool")"
  case "$tool" in
    k8s)
      go build -trimpath -tags=selinux,notest,grpcnotrace -ldflags "$(k8s_ldflags)" -o "$out/" \
        k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager \
        k8s.io/kubernetes/cmd/kube-scheduler k8s.io/kubernetes/cmd/kubectl ;;
    k8s-node)
      go build -trimpath -tags=selinux,notest,grpcnotrace -ldflags "$(k8s_ldflags)" -o "$out/" \
        k8s.io/kubernetes/cmd/kubelet k8s.io/kubernetes/cmd/kube-proxy ;;
    etcd)
      go build -trimpath -ldflags "-s -w -X go.etcd.io/etcd/api/v3/version.GitSHA=$ETCD_VERSION" \
        -o "$out/etcd" go.etcd.io/etcd/server/v3
      go build -trimpath -ldflags "-s -w" -o "$out/etcdctl" go.etcd.io/etcd/etcdctl/v3 ;;
    kwok)
      go build -trimpath -ldflags "-s -w -X sigs.k8s.io/kwok/pkg/consts.Version=${KWOK_VERSION#v}" \
        -o "$out/" sigs.k8s.io/kwok/cmd/kwok sigs.k8s.io/kwok/cmd/kwokctl ;;
    kustomize)
      go build -trimpath -ldflags "-s -w" -o "$out/kustomize" sigs.k8s.io/kustomize/kustomize/v5 ;;
    coredns)
      go build -trimpath -ldflags "-s -w -X github.com/coredns/coredns/coremain.GitCommit=$COREDNS_VERSION" \
        -o "$out/coredns" . ;;
    argocd)
      # One binary; the role comes from argv[0] (or ARGOCD_BINARY_NAME), so the test bed starts it
      # as argocd-repo-server, argocd-application-controller and argocd-applicationset-controller.
      local pkg=github.com/argoproj/argo-cd/v3/common
      go build -trimpath -ldflags "-s -w -X $pkg.version=${ARGOCD_VERSION#v} -X $pkg.gitTag=$ARGOCD_VERSION \
        -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z" \
        -o "$out/argocd" github.com/argoproj/argo-cd/v3/cmd
      local role
      for role in argocd-repo-server argocd-application-controller argocd-applicationset-controller \
        argocd-git-ask-pass; do ln -s argocd "$out/$role"; done ;;
    actionlint)
      go build -trimpath -ldflags "-s -w -X github.com/rhysd/actionlint.version=$ACTIONLINT_VERSION" \
        -o "$out/actionlint" github.com/rhysd/actionlint/cmd/actionlint ;;
    pulumi)
      # The Automation API refuses a CLI whose version it cannot read: stamp the release.
      go build -trimpath \
        -ldflags "-s -w -X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=$PULUMI_VERSION" \
        -o "$out/pulumi" github.com/pulumi/pulumi/pkg/v3/cmd/pulumi ;;
    pulumi-kubernetes) compile_pulumi_kubernetes "$out" ;;
    victorialogs)
      go build -trimpath \
        -ldflags "-s -w -X github.com/VictoriaMetrics/VictoriaMetrics/lib/buildinfo.Version=victoria-logs-$VICTORIALOGS_VERSION" \
        -o "$out/victoria-logs" github.com/VictoriaMetrics/VictoriaLogs/app/victoria-logs ;;
    otelcol)
      go build -trimpath -ldflags "-s -w -X main.version=$OTELCOL_VERSION" -o "$out/assistente-otelcol" . ;;
  esac
}

build() {
  local tool=$1 bin tmp start lock_fd
  [ -f "$repo/tools/go/$(tool_module "$tool")/go.mod" ] || regen "$(tool_module "$tool")"
  bin=$(tool_bin_dir "$tool")
  # Several checkouts (git worktrees, parallel CI jobs) may share the cache: one builds, the
  # others wait for it instead of compiling the same tool twice.
  mkdir -p "$(dirname "$bin")"
  exec {lock_fd}>"$bin.lock"
  if ! flock -n "$lock_fd"; then
    log "$tool $(tool_version "$tool"): another build holds $bin.lock; waiting for it"
    flock "$lock_fd"
  fi
  if [ -f "$bin/.complete" ]; then
    exec {lock_fd}>&-
    log "$tool $(tool_version "$tool"): cached in $bin"
    return
  fi
  log "$tool $(tool_version "$tool"): building from Go module sources into $bin (first time only)"
  case "$tool" in
    k8s) log "  Kubernetes: about 7 minutes on 2 cores with a warm module download, more when cold" ;;
    pulumi) log "  Pulumi CLI: about 6 minutes on 2 cores" ;;
    pulumi-kubernetes) log "  Pulumi Kubernetes provider: about 10 minutes on 2 cores, ~4.3 GB of memory" ;;
    argocd) log "  Argo CD: about 7 minutes on 2 cores with a warm module download, more when cold" ;;
    k8s-node) log "  kubelet + kube-proxy: about 4 minutes on 2 cores after the control plane" ;;
    otelcol) log "  OpenTelemetry Collector: about 5 minutes on 2 cores" ;;
  esac
  start=$(date +%s)
  tmp="$bin.tmp.$$"
  rm -rf "$tmp"; mkdir -p "$tmp"
  (compile "$tool" "$tmp")
  touch "$tmp/.complete"
  rm -rf "$bin"; mkdir -p "$(dirname "$bin")"; mv "$tmp" "$bin"
  log "$tool $(tool_version "$tool"): built in $(( $(date +%s) - start ))s"
  exec {lock_fd}>&-
}

main() {
  command -v go >/dev/null || { log "Go is required (go 1.26 or newer): install it first"; exit 1; }
  case "${1:-}" in
    --bin-dir) tool_bin_dir "$2"; return ;;
    --regen) regen "$2"; return ;;
  esac
  local tools=("$@")
  [ ${#tools[@]} -eq 0 ] || [ "${tools[0]}" = all ] && tools=(k8s etcd kwok kustomize actionlint victorialogs otelcol)
  local tool
  for tool in "${tools[@]}"; do build "$tool"; done
}

main "$@"
