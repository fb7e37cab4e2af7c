//go:build tools

// Package tools pins Flux's source-controller, which the end-to-end tests run beside helm-controller
// so HelmReleases are really installed and upgraded; it is never part of hrto.
package tools

import _ "github.com/fluxcd/source-controller"
