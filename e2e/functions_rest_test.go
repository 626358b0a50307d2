//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/apache/pulsar-client-go/pulsar"
	"github.com/apache/pulsar-client-go/pulsaradmin"
	"github.com/apache/pulsar-client-go/pulsaradmin/pkg/admin/config"
	"github.com/apache/pulsar-client-go/pulsaradmin/pkg/rest"
	"github.com/apache/pulsar-client-go/pulsaradmin/pkg/utils"
	"github.com/meshfed/meshfed/internal/testkit"
)

// Pulsar's own admin client (pulsaradmin) drives the Functions REST API
// of a `meshfed server` (mutual TLS and --auth, as every e2e control
// plane): over https with a bearer token and no client certificate, as
// pulsar-admin calls a Pulsar cluster.
func TestFunctionsREST(t *testing.T) {
	f := newFed(t, fedOptions{servers: 1, clusters: []string{"a"}})
	srv := f.cp.servers[0]
	base := "https://" + srv.httpAddr
	admin := func(token string) pulsaradmin.Client {
		c, err := pulsaradmin.NewClient(&config.Config{WebServiceURL: base, Token: token, TLSTrustCertsFilePath: pki.ca, PulsarAPIVersion: config.V3})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	fns := admin(f.cp.token(t)).Functions()

	const tenant, ns = "public", "default"
	in, out := topicURL("rest-in"), topicURL("rest-out")
	excl := &utils.FunctionConfig{Tenant: tenant, Namespace: ns, Name: "excl", Inputs: []string{in}, Output: out,
		Parallelism: 2, SubscriptionPosition: "Earliest", ProcessingGuarantees: "ATLEAST_ONCE"}

	waitRunning := func(name string, want int) utils.FunctionStatus {
		t.Helper()
		var st utils.FunctionStatus
		testkit.Eventually(t, 60*time.Second, fmt.Sprintf("%s: numRunning %d", name, want), func() (bool, string) {
			var err error
			st, err = fns.GetFunctionStatus(tenant, ns, name)
			if err != nil {
				return false, err.Error()
			}
			return st.NumRunning == want, fmt.Sprintf("%+v", st)
		})
		return st
	}

	t.Run("create_builtin_list_get_status", func(t *testing.T) {
		if err := fns.CreateFuncWithURL(excl, "builtin://exclamation"); err != nil {
			t.Fatalf("create from builtin://exclamation: %v", err)
		}
		names, err := fns.GetFunctions(tenant, ns)
		if err != nil || !slices.Contains(names, "excl") {
			t.Fatalf("list: %v, %v; want excl listed", names, err)
		}
		got, err := fns.GetFunction(tenant, ns, "excl")
		if err != nil {
			t.Fatal(err)
		}
		if got.Parallelism != 2 || !slices.Equal(got.Inputs, []string{in}) || got.Output != out || got.ProcessingGuarantees != "ATLEAST_ONCE" || got.SubscriptionPosition != "Earliest" {
			t.Errorf("get: %+v, want parallelism 2, inputs [%s], output %s", got, in, out)
		}
		st := waitRunning("excl", 2)
		if st.NumInstances != 2 || len(st.Instances) != 2 {
			t.Errorf("status: %+v, want 2 instances", st)
		}
		one, err := fns.GetFunctionStatusWithInstanceID(tenant, ns, "excl", 1)
		if err != nil || !one.Running {
			t.Errorf("status of instance 1: %+v, %v; want running", one, err)
		}
	})

	const n = 20
	t.Run("messages_and_stats", func(t *testing.T) {
		f := f.sub(t)
		f.produce(in, 0, n, "a")
		got := consumeN(t, f.pulsar("a"), out, n)
		for i := 0; i < n; i++ {
			if w := sentence(i) + "!"; !slices.Contains(got, w) {
				t.Errorf("output lacks %q (read %d messages)", w, len(got))
			}
		}
		testkit.Eventually(t, 30*time.Second, "stats: processedSuccessfullyTotal reaches the messages sent", func() (bool, string) {
			s, err := fns.GetFunctionStats(tenant, ns, "excl")
			if err != nil {
				return false, err.Error()
			}
			return s.ProcessedSuccessfullyTotal >= n && s.ReceivedTotal >= n && len(s.Instances) == 2,
				fmt.Sprintf("received %d processed %d instances %d", s.ReceivedTotal, s.ProcessedSuccessfullyTotal, len(s.Instances))
		})
		t.Logf("stats after %d messages reach processedSuccessfullyTotal >= %d", n, n)
	})

	t.Run("trigger", func(t *testing.T) {
		// pulsaradmin v0.19.0 sends the trigger but never decodes the
		// answer (it returns ""), so the answer is read over plain HTTPS too.
		if _, err := fns.TriggerFunction(tenant, ns, "excl", "", "ping", ""); err != nil {
			t.Errorf("trigger through pulsaradmin: %v", err)
		}
		var body bytes.Buffer
		mw := multipart.NewWriter(&body)
		mw.WriteField("data", "pong")
		mw.Close()
		req, _ := http.NewRequest(http.MethodPost, base+"/admin/v3/functions/public/default/excl/trigger", &body)
		req.Header.Set("Content-Type", mw.FormDataContentType())
		req.Header.Set("Authorization", "Bearer "+f.cp.token(t))
		resp, err := httpsClient(t).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || string(got) != `"pong!"` {
			t.Errorf("trigger: %d %s, want 200 \"pong!\"", resp.StatusCode, got)
		}
		_, err = fns.TriggerFunction(tenant, ns, "excl", topicURL("not-an-input"), "ping", "")
		checkRefusal(t, err, http.StatusBadRequest, "not an input")
	})

	t.Run("state_put_get", func(t *testing.T) {
		if err := fns.PutFunctionState(tenant, ns, "excl", utils.FunctionState{Key: "greeting", StringValue: "hello"}); err != nil {
			t.Fatal(err)
		}
		st, err := fns.GetFunctionState(tenant, ns, "excl", "greeting")
		if err != nil || st.StringValue != "hello" {
			t.Errorf("state get: %+v, %v; want hello", st, err)
		}
		_, err = fns.GetFunctionState(tenant, ns, "excl", "absent")
		checkRefusal(t, err, http.StatusNotFound, "absent")
	})

	t.Run("stop_start_restart_update", func(t *testing.T) {
		if err := fns.StopFunction(tenant, ns, "excl"); err != nil {
			t.Fatal(err)
		}
		waitRunning("excl", 0)
		if err := fns.StartFunction(tenant, ns, "excl"); err != nil {
			t.Fatal(err)
		}
		waitRunning("excl", 2)

		epoch := func() uint64 {
			as, err := f.assignments("excl")
			if err != nil {
				return 0
			}
			return as["excl#1"].GetSpec().GetEpoch()
		}
		before, other := epoch(), uint64(0)
		if as, err := f.assignments("excl"); err == nil {
			other = as["excl#0"].GetSpec().GetEpoch()
		}
		if err := fns.RestartFunctionWithID(tenant, ns, "excl", 1); err != nil {
			t.Fatal(err)
		}
		testkit.Eventually(t, 30*time.Second, "instance 1 restarted with a new epoch", func() (bool, string) {
			e := epoch()
			return e > before, fmt.Sprintf("epoch %d (was %d)", e, before)
		})
		waitRunning("excl", 2)
		if as, err := f.assignments("excl"); err == nil && as["excl#0"].GetSpec().GetEpoch() != other {
			t.Errorf("restarting instance 1 moved instance 0's epoch from %d to %d", other, as["excl#0"].GetSpec().GetEpoch())
		}

		if err := fns.StopFunctionWithID(tenant, ns, "excl", 0); err != nil {
			t.Fatal(err)
		}
		waitRunning("excl", 1)
		if err := fns.StartFunctionWithID(tenant, ns, "excl", 0); err != nil {
			t.Fatal(err)
		}
		waitRunning("excl", 2)

		up := *excl
		up.Parallelism = 3
		if err := fns.UpdateFunctionWithURL(&up, "", nil); err != nil {
			t.Fatalf("update parallelism: %v", err)
		}
		waitRunning("excl", 3)
		if got, err := fns.GetFunction(tenant, ns, "excl"); err != nil || got.Parallelism != 3 {
			t.Errorf("get after update: parallelism %d, %v; want 3", got.Parallelism, err)
		}
		// The function still runs exclamation after the update.
		f := f.sub(t)
		f.produce(in, n, n+1, "a")
		if got := consumeFrom(t, f.pulsar("a"), out, sentence(n)+"!"); !got {
			t.Errorf("no %q after the update", sentence(n)+"!")
		}
	})

	t.Run("uploaded_wasm_package", func(t *testing.T) {
		wasm := buildWasmSplit(t)
		cfg := &utils.FunctionConfig{Tenant: tenant, Namespace: ns, Name: "split", Inputs: []string{topicURL("rest-sentences")},
			Output: topicURL("rest-words"), Parallelism: 1, SubscriptionPosition: "Earliest", Runtime: utils.GoRuntime}
		if err := fns.CreateFunc(cfg, wasm); err != nil {
			t.Fatalf("create from an uploaded package: %v", err)
		}
		waitRunning("split", 1)
		f := f.sub(t)
		f.produce(topicURL("rest-sentences"), 0, 3, "a")
		got := consumeN(t, f.pulsar("a"), topicURL("rest-words"), 6)
		if !slices.Contains(got, "fox") || !slices.Contains(got, "m2") {
			t.Errorf("words: %q, want fox and m2 among them", got)
		}
		dl := filepath.Join(t.TempDir(), "down.wasm")
		if err := fns.DownloadFunctionByNs(dl, tenant, ns, "split"); err != nil {
			t.Fatal(err)
		}
		a, _ := os.ReadFile(wasm)
		b, _ := os.ReadFile(dl)
		if !bytes.Equal(a, b) {
			t.Errorf("download: %d bytes differ from the %d uploaded", len(b), len(a))
		}
	})

	t.Run("refusals", func(t *testing.T) {
		bad := *excl
		bad.Name = "bad"
		bad.ProcessingGuarantees = "MANUAL"
		checkRefusal(t, fns.CreateFuncWithURL(&bad, "builtin://exclamation"), http.StatusBadRequest, "processingGuarantees")
		bad.ProcessingGuarantees = ""
		bad.TopicsPattern = ptr("persistent://public/default/rest-.*")
		checkRefusal(t, fns.CreateFuncWithURL(&bad, "builtin://exclamation"), http.StatusBadRequest, "topicsPattern")

		missing := *excl
		missing.Tenant = "nosuch"
		err := fns.CreateFuncWithURL(&missing, "builtin://exclamation")
		checkRefusal(t, err, http.StatusBadRequest, "nosuch")

		other := strings.TrimSpace(mustCLI(t, f.srv(), "token", "create", "--role", "tenant-admin", "--tenant", "acme", "--subject", "bob", "-o", "secret"))
		denied := *excl
		denied.Name = "denied"
		checkRefusal(t, admin(other).Functions().CreateFuncWithURL(&denied, "builtin://exclamation"), http.StatusForbidden, "may not functionmesh")
		_, err = admin(other).Functions().GetFunction(tenant, ns, "excl")
		checkRefusal(t, err, http.StatusForbidden, "may not functionmesh")

		_, err = admin("").Functions().GetFunction(tenant, ns, "excl")
		checkRefusal(t, err, http.StatusUnauthorized, "bearer token")
		plain, err := pulsaradmin.NewClient(&config.Config{WebServiceURL: "http://" + srv.httpAddr, Token: f.cp.token(t), PulsarAPIVersion: config.V3})
		if err != nil {
			t.Fatal(err)
		}
		_, err = plain.Functions().GetFunction(tenant, ns, "excl")
		checkRefusal(t, err, http.StatusUnauthorized, "requires TLS")
	})

	t.Run("delete", func(t *testing.T) {
		for _, name := range []string{"excl", "split"} {
			if err := fns.DeleteFunction(tenant, ns, name); err != nil {
				t.Fatalf("delete %s: %v", name, err)
			}
			_, err := fns.GetFunction(tenant, ns, name)
			checkRefusal(t, err, http.StatusNotFound, "doesn't exist")
		}
		names, err := fns.GetFunctions(tenant, ns)
		if err != nil || len(names) != 0 {
			t.Errorf("list after delete: %v, %v; want none", names, err)
		}
	})
}

func ptr[T any](v T) *T { return &v }

// httpsClient trusts the e2e CA.
func httpsClient(t *testing.T) *http.Client {
	t.Helper()
	pem, err := os.ReadFile(pki.ca)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	return &http.Client{Timeout: time.Minute, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
}

// checkRefusal requires err to be Pulsar's error JSON with code and a
// reason containing want.
func checkRefusal(t *testing.T, err error, code int, want string) {
	t.Helper()
	var re rest.Error
	if !errors.As(err, &re) {
		t.Errorf("got %v, want a %d refusal naming %q", err, code, want)
		return
	}
	if re.Code != code || !strings.Contains(re.Reason, want) {
		t.Errorf("got %d %q, want %d with a reason containing %q", re.Code, re.Reason, code, want)
		return
	}
	t.Logf("refused as wanted: %d %s", re.Code, re.Reason)
}

// consumeN reads n messages of topic from its start.
func consumeN(t *testing.T, c pulsar.Client, topic string, n int) []string {
	t.Helper()
	cons, err := c.Subscribe(pulsar.ConsumerOptions{Topic: topic, SubscriptionName: fmt.Sprintf("rest-test-%d", time.Now().UnixNano()),
		SubscriptionInitialPosition: pulsar.SubscriptionPositionEarliest})
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var got []string
	for len(got) < n {
		m, err := cons.Receive(ctx)
		if err != nil {
			t.Fatalf("read %s: %d of %d messages: %v", topic, len(got), n, err)
		}
		cons.Ack(m)
		got = append(got, string(m.Payload()))
	}
	return got
}

// consumeFrom reports whether topic comes to hold want within a minute.
func consumeFrom(t *testing.T, c pulsar.Client, topic, want string) bool {
	t.Helper()
	cons, err := c.Subscribe(pulsar.ConsumerOptions{Topic: topic, SubscriptionName: fmt.Sprintf("rest-test-%d", time.Now().UnixNano()),
		SubscriptionInitialPosition: pulsar.SubscriptionPositionEarliest})
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for {
		m, err := cons.Receive(ctx)
		if err != nil {
			return false
		}
		cons.Ack(m)
		if string(m.Payload()) == want {
			return true
		}
	}
}

// A follower serves the Functions REST API too: its writes (state puts
// included) reach the leader through the server's forwarding, and its reads
// are linearizable.
func TestFunctionsRESTFollower(t *testing.T) {
	f := newFed(t, fedOptions{servers: 3, clusters: []string{"a"}})
	lead := leader(t, f.srv(), 3)
	var follower *server
	for _, s := range f.cp.servers {
		if s.id != lead {
			follower = s
			break
		}
	}
	admin, err := pulsaradmin.NewClient(&config.Config{WebServiceURL: "https://" + follower.httpAddr, Token: f.cp.token(t),
		TLSTrustCertsFilePath: pki.ca, PulsarAPIVersion: config.V3})
	if err != nil {
		t.Fatal(err)
	}
	fns := admin.Functions()
	cfg := &utils.FunctionConfig{Tenant: "public", Namespace: "default", Name: "fwd", Inputs: []string{topicURL("fwd-in")},
		Output: topicURL("fwd-out"), Parallelism: 1, SubscriptionPosition: "Earliest"}
	if err := fns.CreateFuncWithURL(cfg, "builtin://exclamation"); err != nil {
		t.Fatalf("create through follower %s (leader %s): %v", follower.id, lead, err)
	}
	running := func(want int) {
		t.Helper()
		testkit.Eventually(t, 60*time.Second, fmt.Sprintf("numRunning %d through the follower", want), func() (bool, string) {
			st, err := fns.GetFunctionStatus("public", "default", "fwd")
			if err != nil {
				return false, err.Error()
			}
			return st.NumRunning == want, fmt.Sprintf("%+v", st)
		})
	}
	running(1)
	f.sub(t).produce(topicURL("fwd-in"), 0, 1, "a")
	if got := consumeN(t, f.pulsar("a"), topicURL("fwd-out"), 1); got[0] != sentence(0)+"!" {
		t.Errorf("output %q, want %q", got[0], sentence(0)+"!")
	}
	if err := fns.StopFunction("public", "default", "fwd"); err != nil {
		t.Fatal(err)
	}
	running(0)
	// State put through the follower reaches the leader; read back at once.
	if err := fns.PutFunctionState("public", "default", "fwd", utils.FunctionState{Key: "k", StringValue: "v"}); err != nil {
		t.Fatalf("put state through follower %s: %v", follower.id, err)
	}
	if got, err := fns.GetFunctionState("public", "default", "fwd", "k"); err != nil || got.StringValue != "v" {
		t.Errorf("get state through the follower: %+v, %v; want v", got, err)
	}
	if err := fns.DeleteFunction("public", "default", "fwd"); err != nil {
		t.Fatal(err)
	}
	_, err = fns.GetFunction("public", "default", "fwd")
	checkRefusal(t, err, http.StatusNotFound, "doesn't exist")
}
