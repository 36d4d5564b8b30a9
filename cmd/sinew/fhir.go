package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/sinewhq/sinew/pkg/fhir"
)

func fhirVerbs() []verb {
	return []verb{
		{name: "fhir check", args: "[FILE...]", summary: "read FHIR R4 JSON, Bundles or NDJSON (stdin for none or -): resourceType/id and warnings per resource; an OperationOutcome and exit 1 for malformed input", setup: func(fs *flag.FlagSet) runFunc {
			return func(_ context.Context, e *env, pos []string) error { return fhirCheck(pos, e) }
		}},
	}
}

// fhirCheck prints one line per resource ("resourceType/id", then each
// warning indented) and, for input that is not a resource, the
// OperationOutcome that says why (stdout, one JSON line) and exits 1.
func fhirCheck(files []string, e *env) error {
	if len(files) == 0 {
		files = []string{"-"}
	}
	bad := false
	for _, name := range files {
		var b []byte
		var err error
		if name == "-" {
			b, err = io.ReadAll(e.stdin)
		} else {
			b, err = os.ReadFile(name)
		}
		if err != nil {
			return err
		}
		prefix := ""
		if len(files) > 1 {
			prefix = name + ": "
		}
		fhir.ReadDocument(b, func(it fhir.Item) bool {
			if it.Err != nil {
				bad = true
				oo := fhir.NewOutcome(fhir.SeverityError, "structure", it.Err.Error())
				if fe, ok := it.Err.(*fhir.Error); ok {
					oo = fe.Outcome()
				}
				fmt.Fprintf(e.stdout, "%s%s\n", prefix, oo.JSON())
				return true
			}
			r := it.Resource
			where := ""
			if it.Entry >= 0 {
				where = fmt.Sprintf("  entry[%d] ", it.Entry)
			}
			id := r.Key()
			if r.ID == "" {
				id = r.Type
			}
			fmt.Fprintf(e.stdout, "%s%s%s\n", prefix, where, id)
			for _, w := range r.Warnings {
				fmt.Fprintf(e.stdout, "%s%s  warning: %s\n", prefix, where, w)
			}
			return true
		})
	}
	if bad {
		return exitError(1)
	}
	return nil
}
