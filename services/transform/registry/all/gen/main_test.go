package main

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// TestEntriesAreGenerated: entries.go lists exactly the flow packages
// under services/transform/flows; a folder added or removed without
// regenerating fails here with the command to run.
func TestEntriesAreGenerated(t *testing.T) {
	want, err := generate(filepath.Join("..", "..", "..", "flows"))
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join("..", "entries.go"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("services/transform/registry/all/entries.go is stale: run %s\nwant:\n%s", Command, want)
	}
}

// A folder without an Entry (a shared shape such as hl7flow) is not listed.
func TestSharedShapesAreNotFlows(t *testing.T) {
	pkgs, err := find(filepath.Join("..", "..", "..", "flows"))
	if err != nil {
		t.Fatal(err)
	}
	if len(pkgs) == 0 {
		t.Fatal("no flow package found")
	}
	for _, p := range pkgs {
		if p.dir == "hl7flow" {
			t.Fatalf("hl7flow listed as a flow: %+v", pkgs)
		}
	}
}
