#!/usr/bin/env bash
# Release process for the Helm chart: package it and push it as an OCI artifact.
#   hack/release-chart.sh oci://ghcr.io/<owner>/charts
# Uses the helm binary the tests build from the Go module proxy (.cache/bin/helm-<version>); log in
# first with `helm registry login`.
set -euo pipefail
cd "$(dirname "$0")/.."
registry="${1:?usage: hack/release-chart.sh oci://REGISTRY/PATH}"
chart=charts/helmrelease-trigger-operator

# The chart ships the same alert rules as config/monitoring (a test holds them equal).
cmp -s config/monitoring/prometheus-rules.yaml "$chart/files/prometheus-rules.yaml" ||
  { echo "release: $chart/files/prometheus-rules.yaml differs from config/monitoring; copy it first" >&2; exit 1; }

helm_bin=$(node --import tsx -e "import('./test/harness/binaries.ts').then(async (m) => console.log((await m.ensureBinary(m.deployBinaries.helm)).path))")
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
"$helm_bin" lint "$chart" --strict
"$helm_bin" package "$chart" --destination "$out"
"$helm_bin" push "$out"/*.tgz "$registry"
