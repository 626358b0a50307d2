package objects

import (
	"os"
	"strings"
	"testing"

	meshfedv1 "github.com/meshfed/meshfed/gen/meshfed/v1"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"
)

func TestNormalize(t *testing.T) {
	o := Wrap(&meshfedv1.Grant{Metadata: &meshfedv1.ObjectMeta{Name: "g"}})
	Normalize(o)
	if g := o.GetGrant(); g.GetApiVersion() != APIVersion || g.GetKind() != "Grant" {
		t.Errorf("normalized = %v", g)
	}
	Normalize(&meshfedv1.Object{}) // must not panic
	Normalize(nil)
}

func TestEncodeRoundTrip(t *testing.T) {
	cfg, err := structpb.NewStruct(map[string]any{"epochs": 3, "rate": 0.5, "tags": []any{"a", true}})
	if err != nil {
		t.Fatal(err)
	}
	f := validFunction()
	f.Config = cfg
	m := validMesh(f)
	m.ApiVersion, m.Kind = "", "" // Encode fills them
	m.Metadata.ResourceVersion = 1 << 60
	m.Metadata.Labels = map[string]string{"app": "wc"}
	m.Metadata.CreateTime = timestamppb.New(timestamppb.Now().AsTime().Truncate(1000))
	m.Status = &meshfedv1.FunctionMeshStatus{ObservedGeneration: 3,
		Conditions: []*meshfedv1.Condition{{Type: "Ready", Status: "True"}}}
	objs := []*meshfedv1.Object{Wrap(m), Wrap(validCluster()), Wrap(validGrant()), Wrap(validNamespace()), Wrap(validTenant())}
	for _, o := range objs {
		want := proto.Clone(o).(*meshfedv1.Object)
		Normalize(want)
		for _, format := range []string{"yaml", "json"} {
			out, err := Encode(o, format)
			if err != nil {
				t.Fatalf("%s %s: %v", DisplayName(o), format, err)
			}
			back, err := Decode("out."+format, out)
			if err != nil {
				t.Fatalf("%s %s: decode: %v\n%s", DisplayName(o), format, err, out)
			}
			if len(back) != 1 || !proto.Equal(back[0], want) {
				t.Errorf("%s %s: round trip differs:\n%s\ngot  %v\nwant %v", DisplayName(o), format, out, back, want)
			}
		}
	}
	if m.GetApiVersion() != "" {
		t.Error("Encode modified its argument")
	}
}

func TestEncodeFormat(t *testing.T) {
	out, err := Encode(Wrap(validCluster()), "yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"apiVersion: meshfed.io/v1\n", "kind: Cluster\n", "serviceURL: pulsar://broker-a:6650\n", "adminURL: http://broker-a:8080\n"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("yaml lacks %q:\n%s", want, out)
		}
	}
	out, err = Encode(Wrap(validCluster()), "json")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(out), "{\n  \"apiVersion\": \"meshfed.io/v1\",\n  \"kind\": \"Cluster\",\n") {
		t.Errorf("json = %s", out)
	}
	if _, err := Encode(Wrap(validCluster()), "toml"); err == nil || !strings.Contains(err.Error(), `unknown format "toml"`) {
		t.Errorf("toml: %v", err)
	}
	if _, err := Encode(&meshfedv1.Object{}, "json"); err == nil {
		t.Error("empty object encoded")
	}
}

// TestEncodeExamples re-encodes the examples: every object survives.
func TestEncodeExamples(t *testing.T) {
	data, err := os.ReadFile("../examples/federated-learning.yaml")
	if err != nil {
		t.Fatal(err)
	}
	objs, err := Decode("federated-learning.yaml", data)
	if err != nil {
		t.Fatal(err)
	}
	var all []byte
	for _, o := range objs {
		out, err := Encode(o, "yaml")
		if err != nil {
			t.Fatal(err)
		}
		all = append(append(all, "---\n"...), out...)
	}
	back, err := Decode("all.yaml", all)
	if err != nil {
		t.Fatal(err)
	}
	if len(back) != len(objs) {
		t.Fatalf("got %d objects back, want %d", len(back), len(objs))
	}
	for i := range objs {
		if !proto.Equal(objs[i], back[i]) {
			t.Errorf("object %d differs", i)
		}
	}
}
