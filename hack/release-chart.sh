#!/usr/bin/env bash
# Release process for the Helm chart: package it and push it as an OCI artifact.
#   hack/release-chart.sh oci://ghcr.io/<owner>/charts
# Uses the helm binary the tests build from the Go module proxy (.cache/bin/helm-<version>). Logs in
# with REGISTRY_USERNAME / REGISTRY_PASSWORD when they are set (the release workflow), else uses an
# earlier `helm registry login`. The last line printed is the pushed chart, <repository>@<digest>,
# for signing.
set -euo pipefail
cd "$(dirname "$0")/.."
registry="${1:?usage: hack/release-chart.sh oci://REGISTRY/PATH}"
chart=charts/helmrelease-trigger-operator

# The chart ships the same alert rules as config/monitoring (a test holds them equal).
cmp -s config/monitoring/prometheus-rules.yaml "$chart/files/prometheus-rules.yaml" ||
  { echo "release: $chart/files/prometheus-rules.yaml differs from config/monitoring; copy it first" >&2; exit 1; }
# The chart's version and appVersion are the package's (a test holds them equal).
node --import tsx hack/versions.ts check >&2

helm_bin=$(node --import tsx -e "import('./test/harness/binaries.ts').then(async (m) => console.log((await m.ensureBinary(m.deployBinaries.helm)).path))")
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
if [[ -n "${REGISTRY_PASSWORD:-}" ]]; then
  host=${registry#oci://}
  printf '%s' "$REGISTRY_PASSWORD" | "$helm_bin" registry login "${host%%/*}" --username "${REGISTRY_USERNAME:?}" --password-stdin >&2
fi
"$helm_bin" lint "$chart" --strict >&2
"$helm_bin" package "$chart" --destination "$out" >&2
pushed=$("$helm_bin" push "$out"/*.tgz "$registry" 2>&1)
echo "$pushed" >&2
name=$(sed -n 's/^Pushed: //p' <<<"$pushed")
digest=$(sed -n 's/^Digest: //p' <<<"$pushed")
[[ -n "$name" && -n "$digest" ]] || { echo "release: could not read the pushed chart and digest from helm push" >&2; exit 1; }
echo "${name%:*}@${digest}"
