//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/meshfed/meshfed/federation"
	meshfedv1 "github.com/meshfed/meshfed/gen/meshfed/v1"
	"github.com/meshfed/meshfed/internal/testkit"
	"github.com/meshfed/meshfed/objects"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// The residency acceptance run: an EU-only namespace's data never fails
// over to a non-EU cluster; a drill shows Degraded, not a move.
//
// Clusters eu-1 and eu-2 carry the label region=eu, us-1 region=us; each
// has its own broker and agent, and all three stay Healthy except for the
// drill's cordon of eu-1. Namespace public/eu is EU-only (residency
// region=eu). Policy keeps us-1 out at three points:
//
//   - tightening: a mesh of public/eu that named us-1 as its fallback
//     before the residency was set is stopped and reports Degraded
//     (PolicyViolation) as soon as it is set — it does not wait for a
//     failover;
//   - admission: a mesh of public/eu that names us-1 as a fallback is
//     refused and nothing is stored;
//   - failover: admission checks a fallback only against the residency of
//     the mesh's own namespace, so a mesh of public/default that consumes a
//     public/eu topic with us-1 as its fallback is admitted. When the drill
//     cordons eu-1, the planner must refuse us-1 (the input would be read
//     there) and report Degraded naming the rule. With eu-2 listed after
//     us-1 it must skip us-1 and move to eu-2, as the EU mesh that names
//     only eu-2 does.
//
// Throughout, a watcher polls every assignment: none may ever name us-1 or
// its agent, and us-1's broker must never hold a topic of public/eu.

// residencyPoll is how often the watcher reads the assignments.
const residencyPoll = 50 * time.Millisecond

// euMesh renders a one-function FunctionMesh "ingest" (builtin identity)
// that reads inTopic on eu-1 and writes outTopic on eu-1.
func euMesh(ns, name, inTopic, outTopic string, failover ...string) string {
	return fmt.Sprintf(`apiVersion: meshfed.io/v1
kind: FunctionMesh
metadata: {name: %s, tenant: public, namespace: %s}
spec:
  functions:
    - name: ingest
      runtime: {builtin: identity}
      input: {cluster: eu-1, topics: [%q], subscriptionPosition: earliest}
      output: {cluster: eu-1, topic: %q}
      failover: {clusters: [%s], failback: auto}
`, name, ns, inTopic, outTopic, strings.Join(failover, ", "))
}

// meshIn reads a FunctionMesh of tenant public in namespace ns.
func (f *fed) meshIn(ns, name string) (*meshfedv1.FunctionMesh, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := f.api.Get(ctx, &meshfedv1.GetRequest{Kind: objects.KindFunctionMesh, Tenant: "public", Namespace: ns, Name: name})
	if err != nil {
		return nil, err
	}
	return resp.GetObject().GetFunctionMesh(), nil
}

// waitDegraded waits until the mesh's Degraded condition is True with a
// message holding every string of want, and returns its reason and message.
// It fails at once when the watcher w has seen an assignment on the
// forbidden cluster.
func (f *fed) waitDegraded(w *assignmentWatch, ns, name string, timeout time.Duration, want ...string) (reason, msg string) {
	f.t.Helper()
	testkit.Eventually(f.t, timeout, fmt.Sprintf("%s/%s to be Degraded with %q", ns, name, want), func() (bool, string) {
		if v := w.violation(); v != "" {
			f.t.Fatalf("waiting for %s/%s to be Degraded: an assignment went to the forbidden cluster: %s", ns, name, v)
		}
		m, err := f.meshIn(ns, name)
		if err != nil {
			return false, err.Error()
		}
		var st string
		st, reason, msg = condition(m, federation.ConditionDegraded)
		if st != "True" {
			return false, st + " " + reason + ": " + msg
		}
		for _, w := range want {
			if !strings.Contains(msg, w) {
				return false, st + " " + reason + ": " + msg
			}
		}
		return true, ""
	})
	return reason, msg
}

// clusterHealth returns every cluster's status.health.
func (f *fed) clusterHealth() (map[string]string, error) {
	objs, err := f.list(objects.KindCluster)
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, o := range objs {
		c := o.GetCluster()
		out[c.GetMetadata().GetName()] = c.GetStatus().GetHealth()
	}
	return out, nil
}

// assignmentWatch polls every assignment in the background and remembers
// each one that ever named a forbidden cluster (or one of its agents), and
// the clusters each mesh's instances were placed in.
type assignmentWatch struct {
	stopc, done chan struct{}
	// mu guards the fields below.
	mu        sync.Mutex
	polls     int
	readErrs  int
	forbidden []string
	// placed: mesh → clusters its instances were seen assigned to an agent in.
	placed map[string]map[string]bool
}

// watchAssignments starts the watcher; stop ends it (also at cleanup).
func (f *fed) watchAssignments(cluster, agent string) *assignmentWatch {
	w := &assignmentWatch{stopc: make(chan struct{}), done: make(chan struct{}), placed: map[string]map[string]bool{}}
	go func() {
		defer close(w.done)
		tick := time.NewTicker(residencyPoll)
		defer tick.Stop()
		for {
			objs, err := f.list(objects.KindAssignment)
			w.mu.Lock()
			w.polls++
			if err != nil {
				w.readErrs++
			}
			for _, o := range objs {
				a := o.GetAssignment()
				sp, st := a.GetSpec(), a.GetStatus()
				if sp.GetCluster() == cluster || sp.GetAgent() == agent || st.GetCluster() == cluster || st.GetAgent() == agent {
					w.forbidden = append(w.forbidden, fmt.Sprintf("%s %s/%s: cluster=%s agent=%q epoch=%d state=%s", time.Now().UTC().Format(time.StampMilli),
						a.GetMetadata().GetNamespace(), a.GetMetadata().GetName(), sp.GetCluster(), sp.GetAgent(), sp.GetEpoch(), st.GetState()))
				}
				if sp.GetAgent() != "" {
					m := a.GetMetadata().GetNamespace() + "/" + sp.GetMesh()
					if w.placed[m] == nil {
						w.placed[m] = map[string]bool{}
					}
					w.placed[m][sp.GetCluster()] = true
				}
			}
			w.mu.Unlock()
			select {
			case <-w.stopc:
				return
			case <-tick.C:
			}
		}
	}()
	f.t.Cleanup(w.stop)
	return w
}

// violation returns the first forbidden assignment seen ("" if none).
func (w *assignmentWatch) violation() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.forbidden) == 0 {
		return ""
	}
	return w.forbidden[0]
}

func (w *assignmentWatch) stop() {
	select {
	case <-w.stopc:
	default:
		close(w.stopc)
	}
	<-w.done
}

// drillRun is a `meshfed drill run` running in the background.
type drillRun struct {
	args           []string
	stdout, stderr bytes.Buffer
	done           chan struct{}
	code           int
	err            error
}

// startDrill starts `meshfed --server SRV drill run ARGS...` with a
// deadline; it is interrupted when the deadline passes or the test ends.
func (f *fed) startDrill(timeout time.Duration, args ...string) *drillRun {
	f.t.Helper()
	d := &drillRun{args: append([]string{"--server", f.srv(), "drill", "run"}, args...), done: make(chan struct{})}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	cmd := exec.CommandContext(ctx, binPath, d.args...)
	// Interrupted, a drill uncordons its cluster before it exits (Ctrl-C).
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	cmd.WaitDelay = 20 * time.Second
	cmd.Env = envFor(f.t, d.args)
	cmd.Stdout, cmd.Stderr = &d.stdout, &d.stderr
	if err := cmd.Start(); err != nil {
		cancel()
		f.t.Fatalf("start meshfed %s: %v", strings.Join(d.args, " "), err)
	}
	go func() {
		defer close(d.done)
		defer cancel()
		err := cmd.Wait()
		var exit *exec.ExitError
		switch {
		case ctx.Err() != nil:
			d.err = fmt.Errorf("still running after %v", timeout)
		case errors.As(err, &exit):
			d.code = exit.ExitCode()
		case err != nil:
			d.err = err
		}
	}()
	f.t.Cleanup(func() { cancel(); <-d.done })
	return d
}

// wait waits for the drill to end and returns its report (stdout, --json).
func (d *drillRun) wait(t *testing.T) *federation.DrillReport {
	t.Helper()
	<-d.done
	if d.err != nil {
		t.Fatalf("meshfed %s: %v\nstderr:\n%s", strings.Join(d.args, " "), d.err, d.stderr.String())
	}
	var rep federation.DrillReport
	if err := json.Unmarshal(d.stdout.Bytes(), &rep); err != nil {
		t.Fatalf("drill report is not JSON: %v\nstdout:\n%s\nstderr:\n%s", err, d.stdout.String(), d.stderr.String())
	}
	return &rep
}

// namespaceTopics lists a namespace's topics on a broker: nil when the
// broker does not know the namespace.
func (b *brokerProc) namespaceTopics(ns string) ([]string, error) {
	hc := http.Client{Timeout: 2 * time.Second}
	resp, err := hc.Get(b.adminURL() + "/admin/v2/namespaces/" + ns + "/topics")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode == http.StatusNotFound {
		return nil, nil
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("topics of %s on %s: %s %s", ns, b.cluster, resp.Status, strings.TrimSpace(string(body)))
	}
	var out []string
	if err := json.Unmarshal(body, &out); err != nil {
		return nil, fmt.Errorf("topics of %s on %s: %w", ns, b.cluster, err)
	}
	return out, nil
}

func TestResidencyDrillDegradesInsteadOfLeavingEU(t *testing.T) {
	began := time.Now()
	const holdDown = 2 * time.Second
	f := newFed(t, fedOptions{servers: 1, clusters: []string{"eu-1", "us-1", "eu-2"},
		serverFlags: []string{"--failback-hold-down", holdDown.String()}})
	region := map[string]string{"eu-1": "eu", "us-1": "us", "eu-2": "eu"}
	var docs []string
	for _, name := range []string{"eu-1", "us-1", "eu-2"} {
		b := f.brokers[name]
		docs = append(docs, fmt.Sprintf("apiVersion: meshfed.io/v1\nkind: Cluster\nmetadata: {name: %s, labels: {region: %s}}\nspec: {region: %s, serviceURL: %q, adminURL: %q}\n",
			name, region[name], region[name], b.serviceURL(), b.adminURL()))
	}
	// public/eu starts without residency so that a mesh naming us-1 can
	// exist before it is set.
	docs = append(docs, "apiVersion: meshfed.io/v1\nkind: Namespace\nmetadata: {name: eu, tenant: public}\nspec: {}\n")
	f.apply(strings.Join(docs, "---\n"))
	w := f.watchAssignments("us-1", "agent-us-1")
	t.Logf("federation up %v after the start", time.Since(began).Round(time.Millisecond))

	const ingest = "ingest"
	home := map[string]string{ingest: "eu-1"}
	one := map[string]int{ingest: 1}
	euTopic := func(name string) string { return "persistent://public/eu/" + name }
	// late names us-1 before the residency exists; euMove names only eu-2.
	f.apply(euMesh("eu", "late", euTopic("late-in"), euTopic("late-out"), "us-1") + "---\n" +
		euMesh("eu", "eu-move", euTopic("orders"), euTopic("orders-clean"), "eu-2"))
	f.waitRunning("late", convergeTimeout, one, home)
	f.waitRunning("eu-move", convergeTimeout, one, home)

	t.Run("tightening_stops_a_mesh_that_names_us-1", func(t *testing.T) {
		f := f.sub(t)
		set := time.Now()
		f.apply("apiVersion: meshfed.io/v1\nkind: Namespace\nmetadata: {name: eu, tenant: public}\nspec: {residency: {region: eu}}\n")
		reason, msg := f.waitDegraded(w, "eu", "late", convergeTimeout,
			`failover.clusters[0] "us-1" is outside residency region=eu of namespace public/eu (namespace.residency)`)
		t.Logf("late Degraded %v after the residency was set: %s: %s", time.Since(set).Round(time.Millisecond), reason, msg)
		if reason != "PolicyViolation" {
			t.Errorf("late: Degraded reason %q, want PolicyViolation", reason)
		}
		testkit.Eventually(t, convergeTimeout, "late's instance to be unplaced", func() (bool, string) {
			as, err := f.assignments("late")
			if err != nil {
				return false, err.Error()
			}
			a := as[ingest+"#0"]
			return a != nil && a.GetSpec().GetAgent() == "", describeAssignments(as)
		})
		// The compliant mesh beside it keeps running in eu-1.
		f.waitRunning("eu-move", convergeTimeout, one, home)
		if m, err := f.meshIn("eu", "eu-move"); err != nil {
			t.Fatal(err)
		} else if st, reason, msg := condition(m, federation.ConditionDegraded); st != "False" {
			t.Errorf("eu-move is Degraded=%s after the residency was set: %s: %s", st, reason, msg)
		}
	})

	t.Run("admission_refuses_us-1_as_a_fallback", func(t *testing.T) {
		f := f.sub(t)
		file := filepath.Join(f.dir, "eu-to-us.yaml")
		y := euMesh("eu", "eu-to-us", euTopic("payments"), euTopic("payments-clean"), "us-1", "eu-2")
		if err := os.WriteFile(file, []byte(y), 0o644); err != nil {
			t.Fatal(err)
		}
		r := cli(t, "--server", f.srv(), "apply", "-f", file)
		want := `spec.functions[0].failover.clusters[0] "us-1" is outside residency region=eu of namespace public/eu (namespace.residency)`
		if r.code == 0 || !strings.Contains(r.stderr, want) {
			t.Fatalf("apply of a public/eu mesh with failover [us-1, eu-2]: want a refusal naming %q, got %s", want, r)
		}
		if strings.Contains(r.stderr, "eu-2") {
			t.Errorf("the refusal blames eu-2 too:\n%s", r.stderr)
		}
		_, err := f.meshIn("eu", "eu-to-us")
		if status.Code(err) != codes.NotFound {
			t.Fatalf("get the refused mesh: want NotFound, got %v", err)
		}
	})

	// Meshes outside public/eu that consume its topics: admitted with us-1
	// as a fallback, which only the planner can refuse.
	f.apply(euMesh("default", "eu-reader", euTopic("records-a"), topicURL("records-a-seen"), "us-1") + "---\n" +
		euMesh("default", "eu-reader-2", euTopic("records-b"), topicURL("records-b-seen"), "us-1", "eu-2"))
	for _, m := range []string{"eu-reader", "eu-reader-2", "eu-move"} {
		f.waitRunning(m, convergeTimeout, one, home)
	}

	drilled := t.Run("drill_of_eu-1_degrades_instead_of_moving_to_us-1", func(t *testing.T) {
		f := f.sub(t)
		reports := t.TempDir()
		started := time.Now()
		d := f.startDrill(90*time.Second, "--fail-cluster", "eu-1", "--duration", "6s", "--recovery-timeout", "6s",
			"--failback-timeout", "30s", "--rate", "0", "--poll-interval", "50ms", "--json", "--reports-dir", reports)
		// While eu-1 is out: eu-reader is Degraded, naming the rule and
		// the topic's namespace, with us-1 Healthy (usable, refused by
		// policy alone); the others run in eu-2.
		reason, msg := f.waitDegraded(w, "default", "eu-reader", 45*time.Second,
			`fallback us-1 refused by policy`,
			`"persistent://public/eu/records-a" on cluster "us-1" is outside residency region=eu of namespace public/eu, which owns the topic (namespace.residency)`)
		t.Logf("eu-reader Degraded %v after the drill started: %s: %s", time.Since(started).Round(time.Millisecond), reason, msg)
		if h, err := f.clusterHealth(); err != nil {
			t.Error(err)
		} else if h["us-1"] != federation.Healthy || h["eu-1"] != federation.Cordoned {
			t.Errorf("while eu-reader is Degraded: cluster health %v, want us-1 Healthy and eu-1 Cordoned", h)
		}
		moved := map[string]string{ingest: "eu-2"}
		for _, m := range []string{"eu-move", "eu-reader-2"} {
			f.waitRunning(m, convergeTimeout, one, moved)
		}
		if as, err := f.assignments("eu-reader"); err != nil {
			t.Error(err)
		} else if a := as[ingest+"#0"]; a == nil || a.GetSpec().GetAgent() != "" {
			t.Errorf("eu-reader while eu-1 is out: want its instance kept and unplaced: %s", describeAssignments(as))
		}

		rep := d.wait(t)
		t.Logf("drill %s: exit %d after %v; progress:\n%s", rep.ID, d.code, time.Since(started).Round(time.Millisecond), d.stderr.String())
		// The drill fails because eu-reader did not run elsewhere, and
		// says why: Degraded, not a move.
		if d.code != 1 || rep.Passed() {
			t.Errorf("drill: exit %d, problems %q; want exit 1 with a problem", d.code, rep.Problems)
		}
		wantMoved := map[string]string{"eu-move.ingest.0": "eu-2", "eu-reader.ingest.0": "", "eu-reader-2.ingest.0": "eu-2"}
		if len(rep.Affected) != len(wantMoved) {
			t.Errorf("drill affected %d instances, want %d: %+v", len(rep.Affected), len(wantMoved), rep.Affected)
		}
		for _, a := range rep.Affected {
			want, ok := wantMoved[a.Assignment]
			if !ok || a.MovedTo != want {
				t.Errorf("drill: %s/%s/%s moved to %q, want %q", a.Tenant, a.Namespace, a.Assignment, a.MovedTo, want)
			}
		}
		if len(rep.Problems) != 1 || !strings.Contains(rep.Problems[0], "not every affected instance ran elsewhere: [eu-reader.ingest.0]") {
			t.Errorf("drill problems %q, want only eu-reader.ingest.0 not running elsewhere", rep.Problems)
		}
		notes := strings.Join(rep.Notes, "\n")
		for _, want := range []string{"failover incomplete after 6s", "public/default/eu-reader Degraded", "fallback us-1 refused by policy", "(namespace.residency)"} {
			if !strings.Contains(notes, want) {
				t.Errorf("drill notes lack %q:\n%s", want, notes)
			}
		}
		if !rep.Timeline.Recovered.IsZero() || rep.Timeline.Detected.IsZero() || rep.FailbackStatus != federation.FailbackDone {
			t.Errorf("drill timeline %+v, failback %q: want detected, never recovered, failback done", rep.Timeline, rep.FailbackStatus)
		}
		// The stored report reads the same for people.
		show := mustCLI(t, f.srv(), "drill", "show", rep.ID, "--reports-dir", reports)
		for _, want := range []string{"FAILED", "public/default/eu-reader.ingest.0 (atleast_once) did not run elsewhere",
			"public/eu/eu-move.ingest.0 (atleast_once) → eu-2", "public/default/eu-reader-2.ingest.0 (atleast_once) → eu-2", "refused by policy"} {
			if !strings.Contains(show, want) {
				t.Errorf("drill show %s lacks %q:\n%s", rep.ID, want, show)
			}
		}
		if strings.Contains(show, "→ us-1") {
			t.Errorf("drill show %s reports a move to us-1:\n%s", rep.ID, show)
		}
	})

	// eu-1 is back: everything that may run is home again and eu-reader is
	// no longer Degraded; late stays stopped by the residency.
	if drilled {
		for _, m := range []string{"eu-reader", "eu-reader-2", "eu-move"} {
			f.waitRunning(m, convergeTimeout+holdDown, one, home)
		}
		testkit.Eventually(t, convergeTimeout, "eu-reader not Degraded", func() (bool, string) {
			m, err := f.meshIn("default", "eu-reader")
			if err != nil {
				return false, err.Error()
			}
			st, reason, msg := condition(m, federation.ConditionDegraded)
			return st == "False", st + " " + reason + ": " + msg
		})
		if _, reason, _ := condition(mustMesh(t, f, "eu", "late"), federation.ConditionDegraded); reason != "PolicyViolation" {
			t.Errorf("late after the drill: Degraded reason %q, want PolicyViolation", reason)
		}
	}

	w.stop()
	w.mu.Lock()
	defer w.mu.Unlock()
	t.Logf("watched the assignments %d times (%d failed reads) over %v; placements seen: %v", w.polls, w.readErrs,
		time.Since(began).Round(time.Millisecond), w.placed)
	if len(w.forbidden) > 0 {
		t.Errorf("%d reads saw an assignment on us-1; first: %s", len(w.forbidden), strings.Join(w.forbidden[:min(5, len(w.forbidden))], "\n"))
	}
	if drilled && w.polls-w.readErrs < 100 {
		t.Errorf("only %d successful reads of the assignments: the watch proves little", w.polls-w.readErrs)
	}
	for _, m := range []string{"default/eu-reader-2", "eu/eu-move"} {
		if !w.placed[m]["eu-2"] {
			t.Errorf("the watcher never saw %s placed in eu-2: %v", m, w.placed[m])
		}
	}
	topics, err := f.brokers["us-1"].namespaceTopics("public/eu")
	if err != nil {
		t.Fatal(err)
	}
	if len(topics) > 0 {
		t.Errorf("us-1's broker holds topics of public/eu: %v", topics)
	}
}

func mustMesh(t *testing.T, f *fed, ns, name string) *meshfedv1.FunctionMesh {
	t.Helper()
	m, err := f.meshIn(ns, name)
	if err != nil {
		t.Fatal(err)
	}
	return m
}
