//go:build tools

// Package tools pins Flux's controllers for the tests, in one module so the libraries they share
// compile once: helm-controller (its HelmRelease CRD is installed from config/crd/bases, so the
// schema hrto is tested against is Flux's own), source-controller (so HelmReleases really install
// and upgrade) and notification-controller (so hrto's events reach a real Alert). None is part of hrto.
package tools

import (
	_ "github.com/fluxcd/helm-controller"
	_ "github.com/fluxcd/notification-controller"
	_ "github.com/fluxcd/source-controller"
)
