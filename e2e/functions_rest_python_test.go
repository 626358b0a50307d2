//go:build e2e

package e2e

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/apache/pulsar-client-go/pulsaradmin"
	"github.com/apache/pulsar-client-go/pulsaradmin/pkg/admin/config"
	"github.com/apache/pulsar-client-go/pulsaradmin/pkg/utils"
	"github.com/meshfed/meshfed/internal/testkit"
)

// A Python function registered through the Functions REST API by
// pulsaradmin, with its .py file uploaded (as pulsar-admin functions create
// --py does), runs with python3 through the exec runtime of a real agent
// process; its secret, a file reference, is resolved by the agent and read
// with context.get_secret. GET returns the reference, never the value.
func TestFunctionsRESTPython(t *testing.T) {
	if _, err := exec.LookPath("python3"); err != nil {
		t.Skip("python3 is not installed")
	}
	dir := t.TempDir()
	secret := filepath.Join(dir, "greeting")
	if err := os.WriteFile(secret, []byte("hello\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	f := newFed(t, fedOptions{servers: 1, clusters: []string{"a"}})
	admin, err := pulsaradmin.NewClient(&config.Config{WebServiceURL: "https://" + f.cp.servers[0].httpAddr, Token: f.cp.token(t),
		TLSTrustCertsFilePath: pki.ca, PulsarAPIVersion: config.V3})
	if err != nil {
		t.Fatal(err)
	}
	fns := admin.Functions()
	in, out := topicURL("py-in"), topicURL("py-out")
	cfg := &utils.FunctionConfig{Tenant: "public", Namespace: "default", Name: "greet", Inputs: []string{in}, Output: out,
		Parallelism: 1, SubscriptionPosition: "Earliest", Runtime: utils.PythonRuntime, Py: ptr("greet.py"),
		Secrets: map[string]any{"GREETING": "file://" + secret}}

	noClass := *cfg
	err = fns.CreateFunc(&noClass, filepath.Join("testdata", "python", "greet.py"))
	checkRefusal(t, err, http.StatusBadRequest, "className")

	cfg.ClassName = "greet.Greeter"
	if err := fns.CreateFunc(cfg, filepath.Join("testdata", "python", "greet.py")); err != nil {
		t.Fatalf("create with the uploaded greet.py: %v", err)
	}
	got, err := fns.GetFunction("public", "default", "greet")
	if err != nil {
		t.Fatal(err)
	}
	if got.Runtime != utils.PythonRuntime || got.ClassName != "greet.Greeter" || got.Py == nil || *got.Py != "greet.py" ||
		fmt.Sprint(got.Secrets["GREETING"]) != "file://"+secret {
		t.Errorf("get: runtime %q className %q py %v secrets %v", got.Runtime, got.ClassName, got.Py, got.Secrets)
	}
	testkit.Eventually(t, 60*time.Second, "greet: numRunning 1", func() (bool, string) {
		st, err := fns.GetFunctionStatus("public", "default", "greet")
		if err != nil {
			return false, err.Error()
		}
		return st.NumRunning == 1, fmt.Sprintf("%+v", st)
	})
	const n = 3
	f.sub(t).produce(in, 0, n, "a")
	outs := consumeN(t, f.pulsar("a"), out, n)
	for i := 0; i < n; i++ {
		if w := "hello " + sentence(i); !slices.Contains(outs, w) {
			t.Errorf("output %q lacks %q", outs, w)
		}
	}
	t.Logf("python3 through the exec runtime: %q", outs)
	if err := fns.DeleteFunction("public", "default", "greet"); err != nil {
		t.Fatal(err)
	}
}
