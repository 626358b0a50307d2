package functionsapi

import (
	"errors"
	"maps"
	"net/http"
	"reflect"
	"strings"
	"testing"

	"github.com/apache/pulsar-client-go/pulsaradmin/pkg/utils"
	meshfedv1 "github.com/meshfed/meshfed/gen/meshfed/v1"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"
)

var exclamation = &meshfedv1.Runtime{Kind: &meshfedv1.Runtime_Builtin{Builtin: "exclamation"}}

func TestToSpec(t *testing.T) {
	three, sixty := 3, int64(60000)
	cfg := func(edit func(c *utils.FunctionConfig)) *utils.FunctionConfig {
		c := &utils.FunctionConfig{Tenant: "public", Namespace: "default", Name: "f", Inputs: []string{"in"}}
		if edit != nil {
			edit(c)
		}
		return c
	}
	spec := func(edit func(f *meshfedv1.FunctionSpec)) *meshfedv1.FunctionSpec {
		f := &meshfedv1.FunctionSpec{Name: "f", Runtime: exclamation, Input: &meshfedv1.FunctionInput{Cluster: "a", Topics: []string{"in"}}}
		if edit != nil {
			edit(f)
		}
		return f
	}
	userConfig, _ := structpb.NewStruct(map[string]any{"k": "v", "n": 1.0})
	tests := []struct {
		name string
		in   *utils.FunctionConfig
		want *meshfedv1.FunctionSpec
		// refused lists the fields a refusal must name (want is then nil).
		refused []string
	}{
		{"minimal", cfg(nil), spec(nil), nil},
		{"go client defaults (false bools, autoAck false)", cfg(func(c *utils.FunctionConfig) { c.AutoAck = false; c.Runtime = "GO" }), spec(nil), nil},
		{"java client defaults", cfg(func(c *utils.FunctionConfig) {
			c.AutoAck = true
			c.ForwardSourceMessageProperty = true
			c.MaxPendingAsyncRequests = 1000
			c.BatchBuilder = "DEFAULT"
		}), spec(nil), nil},
		{"mapped fields", cfg(func(c *utils.FunctionConfig) {
			c.Parallelism = 3
			c.ProcessingGuarantees = "EFFECTIVELY_ONCE"
			c.Output = "out"
			c.MaxMessageRetries = &three
			c.DeadLetterTopic = "dlq"
			c.LogTopic = "logs"
			c.SubName = "sub"
			c.SubscriptionPosition = "Earliest"
			c.TimeoutMs = &sixty
			c.UserConfig = map[string]any{"k": "v", "n": 1.0}
			c.Resources = &utils.Resources{CPU: 0.5, RAM: 1 << 20}
			c.InputSpecs = map[string]utils.ConsumerConfig{"in2": {}}
			c.CustomSchemaInputs = map[string]string{"in3": ""}
		}), spec(func(f *meshfedv1.FunctionSpec) {
			f.Replicas = 3
			f.ProcessingGuarantee = "effectively_once"
			f.Output = &meshfedv1.FunctionOutput{Cluster: "a", Topic: "out"}
			f.MaxMessageRetry = 3
			f.DeadLetterTopic = "dlq"
			f.LogTopic = "logs"
			f.Input.Subscription = "sub"
			f.Input.SubscriptionPosition = "earliest"
			f.Input.Topics = []string{"in", "in2", "in3"}
			f.Timeout = "60000ms"
			f.Config = userConfig
			f.Resources = &meshfedv1.Resources{Cpu: "500m", Memory: "1048576"}
		}), nil},
		{"manual guarantee", cfg(func(c *utils.FunctionConfig) { c.ProcessingGuarantees = "MANUAL" }), nil, []string{"processingGuarantees"}},
		{"unknown guarantee value", cfg(func(c *utils.FunctionConfig) { c.ProcessingGuarantees = "twice" }), nil, []string{"processingGuarantees"}},
		{"topics pattern", cfg(func(c *utils.FunctionConfig) { p := "t-.*"; c.TopicsPattern = &p }), nil, []string{"topicsPattern"}},
		{"secrets of a builtin", cfg(func(c *utils.FunctionConfig) { c.Secrets = map[string]any{"PW": "env:PW"} }), nil, []string{"secrets"}},
		{"cleanup subscription", cfg(func(c *utils.FunctionConfig) { c.CleanupSubscription = true }), nil, []string{"cleanupSubscription"}},
		{"java", cfg(func(c *utils.FunctionConfig) { c.Runtime = "JAVA"; c.ClassName = "org.Example" }), nil, []string{"runtime", "className"}},
		{"schema input", cfg(func(c *utils.FunctionConfig) { c.CustomSchemaInputs = map[string]string{"in": "avro"} }), nil, []string{"customSchemaInputs.in"}},
		{"input spec settings", cfg(func(c *utils.FunctionConfig) {
			c.InputSpecs = map[string]utils.ConsumerConfig{"x": {ReceiverQueueSize: 5}}
		}), nil, []string{"inputSpecs.x"}},
		{"subscription position", cfg(func(c *utils.FunctionConfig) { c.SubscriptionPosition = "Middle" }), nil, []string{"subscriptionPosition"}},
		{"disk", cfg(func(c *utils.FunctionConfig) { c.Resources = &utils.Resources{Disk: 1} }), nil, []string{"resources.disk"}},
		{"negative", cfg(func(c *utils.FunctionConfig) { c.Parallelism = -1 }), nil, []string{"parallelism"}},
		{"several at once", cfg(func(c *utils.FunctionConfig) {
			c.RetainOrdering = true
			c.WindowConfig = &utils.WindowConfig{}
			c.ProducerConfig = &utils.ProducerConfig{}
		}), nil, []string{"retainOrdering", "windowConfig", "producerConfig"}},
		{"fqfn of another function", cfg(func(c *utils.FunctionConfig) { c.FQFN = "a/b/c" }), nil, []string{"fqfn"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ToSpec(tt.in, exclamation, "a")
			if tt.refused != nil {
				if err == nil {
					t.Fatalf("ToSpec accepted it: %v", got)
				}
				code, reason := httpStatus(err)
				if code != http.StatusBadRequest || !errors.Is(err, ErrUnsupported) {
					t.Errorf("got %d %v, want 400 ErrUnsupported", code, err)
				}
				for _, f := range tt.refused {
					if !strings.Contains(reason, f+": ") {
						t.Errorf("refusal %q does not name %s", reason, f)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !proto.Equal(got, tt.want) {
				t.Errorf("got  %v\nwant %v", got, tt.want)
			}
		})
	}
}

// A spec maps back to a config that maps to the same spec.
func TestFromSpecRoundTrip(t *testing.T) {
	three, ms := 3, int64(1500)
	in := &utils.FunctionConfig{Tenant: "t", Namespace: "n", Name: "f", Inputs: []string{"in"}, Output: "out", Parallelism: 2,
		ProcessingGuarantees: "ATMOST_ONCE", SubscriptionPosition: "Earliest", MaxMessageRetries: &three, TimeoutMs: &ms,
		DeadLetterTopic: "dlq", LogTopic: "log", SubName: "s", UserConfig: map[string]any{"a": true}}
	spec, err := ToSpec(in, exclamation, "a")
	if err != nil {
		t.Fatal(err)
	}
	back := FromSpec("t", "n", spec)
	if *back.Go != "builtin://exclamation" || back.CustomRuntimeOptions != `{"cluster":"a"}` {
		t.Errorf("FromSpec: go %q, customRuntimeOptions %q", *back.Go, back.CustomRuntimeOptions)
	}
	opts, err := parseRuntimeOptions(back.CustomRuntimeOptions)
	if err != nil {
		t.Fatal(err)
	}
	again, err := ToSpec(&back, exclamation, opts.Cluster)
	if err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(spec, again) {
		t.Errorf("round trip changed the spec:\n%v\n%v", spec, again)
	}
}

func TestMergeConfig(t *testing.T) {
	base := &utils.FunctionConfig{Tenant: "t", Namespace: "n", Name: "f", Inputs: []string{"in"}, Output: "out", Parallelism: 2}
	got, err := mergeConfig(base, []byte(`{"parallelism": 5, "cleanupSubscription": false}`))
	if err != nil {
		t.Fatal(err)
	}
	if got.Parallelism != 5 || got.Output != "out" || len(got.Inputs) != 1 {
		t.Errorf("merged %+v: want parallelism 5 and the rest kept", got)
	}
	if _, err := mergeConfig(base, []byte(`{"noSuchField": 1}`)); err == nil || !strings.Contains(err.Error(), "noSuchField") {
		t.Errorf("an unknown field: %v, want it named", err)
	}
}

func TestDecodeConfig(t *testing.T) {
	for _, tt := range []struct {
		in, wantErr string
	}{
		{`{"tenant":"t","inputs":["a"]}`, ""},
		{`{"tenant":"t","unknownField":1}`, `unknown field "unknownField"`},
		{`{"parallelism":"two"}`, "parallelism"},
		{`{} {}`, "data after"},
		{`[`, "functionConfig"},
	} {
		_, err := DecodeConfig([]byte(tt.in))
		if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
			t.Errorf("DecodeConfig(%s) = %v, want error containing %q", tt.in, err, tt.wantErr)
		}
	}
}

func TestParseRuntimeOptions(t *testing.T) {
	if o, err := parseRuntimeOptions(`{"cluster":"b"}`); err != nil || o.Cluster != "b" {
		t.Errorf("got %+v, %v", o, err)
	}
	if _, err := parseRuntimeOptions(`{"jvm":"-Xmx1g"}`); err == nil || !strings.Contains(err.Error(), "customRuntimeOptions") {
		t.Errorf("unknown option: %v, want customRuntimeOptions named", err)
	}
}

// Secrets are references the agent resolves; values in clear and
// provider objects are refused with the secret named, and builtins take
// none.
func TestSecretsMapToReferences(t *testing.T) {
	py := &meshfedv1.Runtime{Kind: &meshfedv1.Runtime_Exec{Exec: &meshfedv1.ExecRuntime{Command: []string{"python3", "shim.py", "f.py", "f.F"}}}}
	c := &utils.FunctionConfig{Tenant: "t", Namespace: "n", Name: "f", Inputs: []string{"in"},
		Secrets: map[string]any{"DB_PASSWORD": "env:PG_PASSWORD", "API_KEY": "file:///etc/meshfed/api-key"}}
	f, err := ToSpec(c, py, "a")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"DB_PASSWORD": "env:PG_PASSWORD", "API_KEY": "file:///etc/meshfed/api-key"}
	if !maps.Equal(f.GetSecrets(), want) {
		t.Errorf("secrets %v, want %v", f.GetSecrets(), want)
	}
	if back := FromSpec("t", "n", f); !reflect.DeepEqual(back.Secrets, map[string]any{"DB_PASSWORD": "env:PG_PASSWORD", "API_KEY": "file:///etc/meshfed/api-key"}) {
		t.Errorf("FromSpec secrets %v", back.Secrets)
	}
	for _, tc := range []struct {
		name    string
		rt      *meshfedv1.Runtime
		secrets map[string]any
		field   string
		reason  string
	}{
		{"in clear", py, map[string]any{"PW": "hunter2"}, "secrets.PW", "in clear is not accepted"},
		{"kubernetes object", py, map[string]any{"PW": map[string]any{"path": "db", "key": "pw"}}, "secrets.PW", "reference string"},
		{"builtin", exclamation, map[string]any{"PW": "env:PW"}, "secrets", "only Python functions"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c.Secrets = tc.secrets
			_, err := ToSpec(c, tc.rt, "a")
			code, reason := httpStatus(err)
			if code != http.StatusBadRequest || !strings.Contains(reason, tc.field+": ") || !strings.Contains(reason, tc.reason) {
				t.Errorf("got %d %q, want 400 naming %s (%s)", code, reason, tc.field, tc.reason)
			}
			if strings.Contains(reason, "hunter2") {
				t.Errorf("the refusal repeats the secret: %s", reason)
			}
		})
	}
}

// A Python function's exec command carries its className: GET gives it
// back with runtime PYTHON and py, and a new className changes the command.
func TestPythonFunctionsRoundTrip(t *testing.T) {
	rt := &meshfedv1.Runtime{Kind: &meshfedv1.Runtime_Exec{Exec: &meshfedv1.ExecRuntime{
		Command: []string{"python3", "meshfed_pulsar_function.py", "greet.py", "greet.Greeter"}, Package: "sha256:" + strings.Repeat("a", 64)}}}
	c := &utils.FunctionConfig{Tenant: "t", Namespace: "n", Name: "f", Inputs: []string{"in"}, Runtime: "PYTHON", ClassName: "greet.Greeter"}
	f, err := ToSpec(c, rt, "a")
	if err != nil {
		t.Fatal(err)
	}
	back := FromSpec("t", "n", f)
	if back.Runtime != utils.PythonRuntime || back.ClassName != "greet.Greeter" || back.Py == nil || *back.Py != "greet.py" {
		t.Errorf("FromSpec: runtime %q className %q py %v", back.Runtime, back.ClassName, back.Py)
	}
	back.ClassName = "greet.Other"
	f2, err := ToSpec(&back, f.GetRuntime(), "a")
	if err != nil {
		t.Fatal(err)
	}
	if cmd := f2.GetRuntime().GetExec().GetCommand(); cmd[3] != "greet.Other" || f2.GetRuntime().GetExec().GetPackage() != rt.GetExec().GetPackage() {
		t.Errorf("after a new className: %v", f2.GetRuntime())
	}
	if cmd := rt.GetExec().GetCommand(); cmd[3] != "greet.Greeter" {
		t.Errorf("ToSpec changed the runtime it was given: %v", cmd)
	}
	for _, tc := range []struct {
		name  string
		rt    *meshfedv1.Runtime
		c     utils.FunctionConfig
		field string
	}{
		{"python from a builtin", exclamation, utils.FunctionConfig{Runtime: "PYTHON", ClassName: "x.Y"}, "runtime"},
		{"python without className", rt, utils.FunctionConfig{Runtime: "PYTHON"}, "className"},
		{"className of Go", exclamation, utils.FunctionConfig{ClassName: "x.Y"}, "className"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cc := tc.c
			cc.Tenant, cc.Namespace, cc.Name, cc.Inputs = "t", "n", "f", []string{"in"}
			_, err := ToSpec(&cc, tc.rt, "a")
			if code, reason := httpStatus(err); code != http.StatusBadRequest || !strings.Contains(reason, tc.field+": ") {
				t.Errorf("got %d %q, want 400 naming %s", code, reason, tc.field)
			}
		})
	}
}
