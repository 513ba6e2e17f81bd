//go:build tools

// Package knative imports the Go packages that hold the Knative CRD manifests, so that
// `go mod tidy` keeps the two modules required (the packages are empty placeholders;
// the build tag keeps this file out of every build).
package knative

import (
	_ "knative.dev/eventing/config/core/resources"
	_ "knative.dev/serving/config/core/300-resources"
)
