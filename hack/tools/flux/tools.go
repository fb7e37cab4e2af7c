//go:build tools

// Package tools pins Flux's helm-controller: the test control plane installs the HelmRelease CRD
// from this module's config/crd/bases, so the schema hrto is tested against is Flux's own.
package tools

import _ "github.com/fluxcd/helm-controller"
