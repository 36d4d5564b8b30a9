// Package all lists every flow package: entries.go is generated from the
// folders of services/transform/flows (gen), so a new flow's code is its
// flows/<id>/ folder and nothing else.
package all

//go:generate go run ./gen

import "github.com/sinewhq/sinew/services/transform/registry"

// Registry returns a registry of every flow package.
func Registry() (*registry.Registry, error) { return registry.New(Entries()...) }
