//go:build tools

// Package tools pins the test control plane's binaries; it is never compiled into hrto.
package tools

import (
	_ "go.etcd.io/etcd/server/v3"
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
)
