package objects

import (
	"os"
	"path/filepath"
	"testing"

	meshfedv1 "github.com/meshfed/meshfed/gen/meshfed/v1"
)

// memLookup is a Lookup over a set of objects, keyed like Key.
type memLookup map[string]bool

func (m memLookup) Exists(kind, tenant, namespace, name string) bool {
	return m[Key(kind, tenant, namespace, name)]
}

func lookupOf(objs []*meshfedv1.Object) memLookup {
	m := memLookup{}
	for _, o := range objs {
		m[KeyOf(o)] = true
	}
	return m
}

// TestExamples checks that every example decodes, validates and has all its
// references inside the file (CRD examples use cluster a of word-count.yaml).
func TestExamples(t *testing.T) {
	files, err := filepath.Glob("../examples/*.yaml")
	if err != nil || len(files) < 3 {
		t.Fatalf("examples: %v %v", files, err)
	}
	wc, err := os.ReadFile("../examples/word-count.yaml")
	if err != nil {
		t.Fatal(err)
	}
	base, err := Decode("word-count.yaml", wc)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			objs, err := DecodeOptions{Cluster: "a"}.Decode(filepath.Base(f), data)
			if err != nil {
				t.Fatal(err)
			}
			if len(objs) == 0 {
				t.Fatal("no objects")
			}
			st := lookupOf(append(objs, base...))
			for i, o := range objs {
				if err := Validate(o); err != nil {
					t.Errorf("doc %d: %v", i+1, err)
				}
				if err := ValidateRefs(o, st); err != nil {
					t.Errorf("doc %d: %v", i+1, err)
				}
			}
		})
	}
}
