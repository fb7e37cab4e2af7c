//go:build tools

// Package tools pins kustomize and helm: the tests render the project's install manifests with them
// and apply the result to the test control plane; they are never part of hrto.
package tools

import (
	_ "helm.sh/helm/v3/cmd/helm"
	_ "sigs.k8s.io/kustomize/kustomize/v5"
)
