package lincheck

import (
	meshfedv1 "github.com/meshfed/meshfed/gen/meshfed/v1"
	"github.com/meshfed/meshfed/objects"
)

// label is the label whose value is a register's value.
const label = "lin"

// Object is register key holding value, as the tests store it: a Cluster
// named key with value in a label. A non-zero rv makes applying it a
// compare-and-set against that resourceVersion.
func Object(key, value string, rv uint64) *meshfedv1.Object {
	return objects.Wrap(&meshfedv1.Cluster{
		ApiVersion: objects.APIVersion, Kind: objects.KindCluster,
		Metadata: &meshfedv1.ObjectMeta{Name: key, ResourceVersion: rv, Labels: map[string]string{label: value}},
		Spec:     &meshfedv1.ClusterSpec{ServiceUrl: "pulsar://127.0.0.1:6650"},
	})
}

// Read returns the value a register object holds and its resourceVersion.
func Read(o *meshfedv1.Object) (value string, rv uint64) {
	md := objects.Meta(o)
	return md.GetLabels()[label], md.GetResourceVersion()
}
