//go:build tools

// Package tools pins the Go programs the tests and the demo build from the Go module proxy; none is
// part of hrto (see go.mod).
package tools

import (
	_ "github.com/fluxcd/helm-controller"
	_ "github.com/fluxcd/notification-controller"
	_ "github.com/fluxcd/source-controller"
	_ "github.com/rhysd/actionlint/cmd/actionlint"
	_ "go.etcd.io/etcd/server/v3"
	_ "helm.sh/helm/v4/cmd/helm"
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "sigs.k8s.io/kustomize/kustomize/v5"
)
