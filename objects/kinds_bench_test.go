package objects

import (
	"testing"

	meshfedv1 "github.com/meshfed/meshfed/gen/meshfed/v1"
)

// BenchmarkWrapKindOf measures what the store and the scheduler call for
// every object they write: Wrap of a typed message and KindOf of the result.
func BenchmarkWrapKindOf(b *testing.B) {
	asg := &meshfedv1.Assignment{Metadata: &meshfedv1.ObjectMeta{Name: "m.f.0"}}
	b.ReportAllocs()
	for b.Loop() {
		if KindOf(Wrap(asg)).Name != KindAssignment {
			b.Fatal("wrong kind")
		}
	}
}
