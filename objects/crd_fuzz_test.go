package objects

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	meshfedv1 "github.com/meshfed/meshfed/gen/meshfed/v1"
	"google.golang.org/protobuf/proto"
)

// FuzzDecodeCRD feeds arbitrary Function Mesh documents to Decode with a
// package resolver, a cluster lookup and skipping of Kubernetes documents
// on. Nothing may panic, errors are field errors and come without objects,
// and a converted mesh encodes to meshfed YAML that decodes to the same
// object. Seeds: testdata/fuzz/FuzzDecodeCRD and examples/functionmesh.
func FuzzDecodeCRD(f *testing.F) {
	f.Add([]byte(fnDoc(goBlock)))
	f.Add([]byte(crdDoc))
	f.Add([]byte("apiVersion: compute.functionmesh.io/v1alpha1\nkind: FunctionMesh\nmetadata: {name: m}\nspec:\n  sources:\n" +
		"    - {name: s, type: mqtt, clusterName: a, sourceConfig: {broker: 'tcp://h:1'}, output: {topic: t}}\n  sinks:\n" +
		"    - {name: k, type: http, clusterName: a, sinkConfig: {url: 'http://h'}, input: {topics: [t]}, subscriptionName: x}\n"))
	f.Add([]byte("apiVersion: compute.functionmesh.io/v1alpha1\nkind: Source\nmetadata: {name: s}\nspec: {type: mqtt, clusterName: a, output: {topic: t}}\n"))
	f.Add([]byte("apiVersion: v1\nkind: List\nitems:\n- " + fmt.Sprintf("%q", fnDoc(goBlock))))
	samples, _ := filepath.Glob("../examples/functionmesh/*.yaml")
	for _, s := range samples {
		if data, err := os.ReadFile(s); err == nil {
			f.Add(data)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		skipped := 0
		opts := DecodeOptions{Packages: &fakePackages{}, Clusters: testClusters, OnSkip: func(int, string, string) { skipped++ }}
		objs, err := opts.Decode("f.yaml", data)
		if err != nil {
			checkFieldErrors(t, err, "f.yaml")
			if objs != nil {
				t.Fatalf("objects returned with error %v", err)
			}
			return
		}
		for _, o := range objs {
			if KindOf(o) == nil {
				t.Fatalf("Decode returned an empty object")
			}
			if err := Validate(o); err != nil {
				checkFieldErrors(t, err, "")
			}
			out, err := Encode(o, "yaml")
			if err != nil {
				t.Fatalf("Encode: %v", err)
			}
			back, err := Decode("out", out)
			if err != nil {
				t.Fatalf("decode of encoded yaml: %v\n%s", err, out)
			}
			want := proto.Clone(o).(*meshfedv1.Object)
			Normalize(want)
			if len(back) != 1 || !proto.Equal(back[0], want) {
				t.Fatalf("round trip changed the object:\n got %v\nwant %v", back, want)
			}
		}
	})
}
