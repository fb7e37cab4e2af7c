//go:build tools

// Package tools pins kustomize and helm (the tests render the project's install manifests with them
// and apply the result to the test control plane) and actionlint (the tests check the release
// workflows with it, since they cannot run here); none is part of hrto.
package tools

import (
	_ "github.com/rhysd/actionlint/cmd/actionlint"
	_ "helm.sh/helm/v3/cmd/helm"
	_ "sigs.k8s.io/kustomize/kustomize/v5"
)
