//go:build e2e

package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/meshfed/meshfed/dev"
	"github.com/meshfed/meshfed/internal/testkit"
	"github.com/meshfed/meshfed/telemetry"
)

// Paths of the shipped dashboard and alert rules, from this directory.
const (
	alertRulesPath = "../deploy/prometheus/meshfed-alerts.yml"
	dashboardPath  = "../deploy/grafana/meshfed-federation.json"
)

// TestPrometheusScrapesDev runs `meshfed dev` (two clusters, example mesh,
// traffic) and a real Prometheus (the Debian package's binary, its own
// config and storage in a temp dir) scraping the control plane and both
// agents with the shipped alert rules loaded. Through Prometheus' HTTP API
// it checks that the function counters, selected by fqfn and cluster, are
// non-zero; that the latency quantiles, Raft and federation gauges and the
// resource from OTEL_SERVICE_NAME / OTEL_RESOURCE_ATTRIBUTES are there;
// that every alert rule evaluates without error; and that every expression
// of the Grafana dashboard is valid PromQL naming only metrics the
// processes expose.
func TestPrometheusScrapesDev(t *testing.T) {
	promBin, err := exec.LookPath("prometheus")
	if err != nil {
		if os.Getenv("MESHFED_REQUIRE_PROMETHEUS") != "" {
			t.Fatal("prometheus is not installed and MESHFED_REQUIRE_PROMETHEUS is set: apt-get install prometheus")
		}
		t.Skip("prometheus is not installed: apt-get install prometheus (CI installs it in .ci/run)")
	}
	dir := t.TempDir()
	dataDir := filepath.Join(dir, "dev")
	t.Setenv("OTEL_SERVICE_NAME", "meshfed-e2e")
	t.Setenv("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment=e2e,team=streams")
	devProc := startProc(t, "meshfed dev", filepath.Join(dir, "dev.log"), []string{"dev", "--clusters", "2", "--data-dir", dataDir,
		"--grpc-addr", "127.0.0.1:0", "--broker-port", "0", "--admin-port", "0", "--traffic", "20", "--runtimes", "builtin",
		"--log-format", "json"})
	t.Cleanup(func() { stopProc(devProc, syscall.SIGINT) })
	var info dev.Info
	testkit.Eventually(t, 2*time.Minute, "meshfed dev writes dev.json", func() (bool, string) {
		if !devProc.alive() {
			t.Fatalf("meshfed dev exited: %v\n%s", devProc.err, tailFile(filepath.Join(dir, "dev.log")))
		}
		var err error
		info, err = dev.ReadInfo(dataDir)
		return err == nil, fmt.Sprint(err)
	})

	// Prometheus scrapes the server and the agents every second.
	promAddr := freeAddrs(t, 1)[0]
	rules, err := filepath.Abs(alertRulesPath)
	if err != nil {
		t.Fatal(err)
	}
	var agents []string
	for _, c := range info.Clusters {
		agents = append(agents, strings.TrimPrefix(c.AgentHTTP, "http://"))
	}
	cfg := fmt.Sprintf(`global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files: [%q]
scrape_configs:
  - job_name: meshfed-server
    static_configs: [{targets: [%q]}]
  - job_name: meshfed-agent
    static_configs: [{targets: [%s]}]
`, rules, strings.TrimPrefix(info.ServerHTTP, "http://"), quoteAll(agents))
	cfgPath := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	promLog, err := os.Create(filepath.Join(dir, "prometheus.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer promLog.Close()
	prom := exec.Command(promBin, "--config.file="+cfgPath, "--storage.tsdb.path="+filepath.Join(dir, "tsdb"),
		"--web.listen-address="+promAddr, "--log.level=warn")
	prom.Stdout, prom.Stderr = promLog, promLog
	if err := prom.Start(); err != nil {
		t.Fatalf("start prometheus: %v", err)
	}
	t.Cleanup(func() { _ = prom.Process.Kill(); _ = prom.Wait() })
	api := &promAPI{t: t, base: "http://" + promAddr, log: promLog.Name()}

	// Every target is up.
	testkit.Eventually(t, time.Minute, "Prometheus scrapes the server and both agents", func() (bool, string) {
		r, err := api.query(`up{job=~"meshfed.*"}`)
		if err != nil {
			return false, err.Error()
		}
		return len(r) == 1+len(agents) && allValues(r, func(v float64) bool { return v == 1 }), fmt.Sprint(r)
	})

	// The function counters, by fqfn and cluster.
	const fqfn, cluster = "public/default/split", "a"
	for _, name := range []string{"pulsar_function_received_total", "pulsar_function_processed_successfully_total"} {
		q := fmt.Sprintf(`sum by (fqfn, cluster) (%s{fqfn=%q, cluster=%q})`, name, fqfn, cluster)
		testkit.Eventually(t, 90*time.Second, q+" > 0", func() (bool, string) {
			r, err := api.query(q)
			if err != nil {
				return false, err.Error()
			}
			return len(r) == 1 && r[0].value > 0, fmt.Sprint(r)
		})
	}
	byFunction, err := api.query(`sum by (fqfn, cluster, tenant, namespace, name) (pulsar_function_received_total)`)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("received by function: %v", byFunction)
	for _, q := range []string{
		fmt.Sprintf(`pulsar_function_user_exceptions_total{fqfn=%q, cluster=%q, tenant="public", namespace="public/default", name="split", instance_id="0"}`, fqfn, cluster),
		fmt.Sprintf(`pulsar_function_system_exceptions_total{fqfn=%q, cluster=%q}`, fqfn, cluster),
		fmt.Sprintf(`pulsar_function_process_latency_ms{fqfn=%q, cluster=%q, quantile="0.999"}`, fqfn, cluster),
		fmt.Sprintf(`pulsar_function_processed_successfully_total_1min{fqfn=%q, cluster=%q} > 0`, fqfn, cluster),
		fmt.Sprintf(`pulsar_function_last_invocation{fqfn=%q, cluster=%q} > 0`, fqfn, cluster),
		fmt.Sprintf(`meshfed_function_backlog_messages{fqfn=%q, cluster=%q} >= 0`, fqfn, cluster),
		`meshfed_raft_has_leader{job="meshfed-server"} == 1`,
		`meshfed_raft_term > 0`,
		`meshfed_cluster_health{cluster="b", health="Healthy"} == 1`,
		`meshfed_agent_up{agent="agent-a"} == 1`,
		`go_goroutines{job="meshfed-server"}`,
		`process_resident_memory_bytes{job="meshfed-agent"}`,
		`target_info{job="meshfed-server", service_name="meshfed-e2e", deployment_environment="e2e", team="streams", service_instance_id="dev"}`,
	} {
		testkit.Eventually(t, 30*time.Second, q, func() (bool, string) {
			r, err := api.query(q)
			if err != nil {
				return false, err.Error()
			}
			return len(r) > 0, fmt.Sprint(r)
		})
	}

	// Every shipped alert rule loads and evaluates without error.
	testkit.Eventually(t, 30*time.Second, "alert rules evaluated without error", func() (bool, string) {
		health, err := api.ruleHealth()
		if err != nil {
			return false, err.Error()
		}
		for _, h := range health {
			if !strings.HasSuffix(h, "=ok") {
				return false, fmt.Sprint(health)
			}
		}
		return len(health) > 0, fmt.Sprint(health)
	})

	// Every dashboard expression is valid PromQL over metrics meshfed
	// exposes, and every rule names only those too.
	exposed := map[string]bool{"up": true}
	for _, target := range append([]string{info.ServerHTTP}, httpAll(agents)...) {
		for _, n := range scrapeNames(t, target+"/metrics") {
			exposed[n] = true
		}
	}
	exprs := dashboardExprs(t)
	for _, e := range exprs {
		for _, n := range telemetry.MetricNames(e) {
			if !exposed[n] {
				t.Errorf("dashboard expression %q names %s, which no meshfed process exposes", e, n)
			}
		}
		q := strings.NewReplacer("$__rate_interval", "1m", "$fqfn", ".*", "$cluster", ".*", "$job", ".*").Replace(e)
		if strings.HasPrefix(q, "label_values(") {
			continue
		}
		if _, err := api.query(q); err != nil {
			t.Errorf("dashboard expression %q: %v", e, err)
		}
	}
	for _, e := range ruleExprs(t) {
		for _, n := range telemetry.MetricNames(e) {
			if !exposed[n] {
				t.Errorf("alert rule %q names %s, which no meshfed process exposes", e, n)
			}
		}
	}
	t.Logf("%d dashboard expressions checked against %d exposed metric names", len(exprs), len(exposed))

	// meshfed dev passed --log-format json to its brokers and agents.
	for _, c := range info.Clusters {
		for _, path := range []string{c.BrokerLog, c.AgentLog} {
			checkJSONLog(t, path)
		}
	}
}

// checkJSONLog checks that every line a child of meshfed dev logged (after
// the line dev writes before each start) is a JSON object with a level and
// a message.
func checkJSONLog(t *testing.T, path string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, line := range strings.Split(string(b), "\n") {
		if line == "" || strings.HasPrefix(line, "=== meshfed dev ") {
			continue
		}
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil || rec["level"] == nil || rec["msg"] == nil {
			t.Errorf("%s: line is not a JSON log record: %q", path, line)
			return
		}
		n++
	}
	if n == 0 {
		t.Errorf("%s: no log lines", path)
	}
}

// stopProc signals p and waits up to stopTimeout, then kills it.
func stopProc(p *proc, sig syscall.Signal) {
	if !p.alive() {
		return
	}
	_ = p.cmd.Process.Signal(sig)
	select {
	case <-p.done:
	case <-time.After(stopTimeout):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

func quoteAll(s []string) string {
	q := make([]string, len(s))
	for i, v := range s {
		q[i] = strconv.Quote(v)
	}
	return strings.Join(q, ", ")
}

func httpAll(addrs []string) []string {
	out := make([]string, len(addrs))
	for i, a := range addrs {
		out[i] = "http://" + a
	}
	return out
}

func tailFile(path string) string {
	b, _ := os.ReadFile(path)
	lines := strings.Split(string(b), "\n")
	return strings.Join(lines[max(0, len(lines)-logTailLines):], "\n")
}

// promAPI queries a Prometheus server's HTTP API.
type promAPI struct {
	t    *testing.T
	base string
	log  string
}

// sample is one element of an instant vector.
type sample struct {
	labels map[string]string
	value  float64
}

func (s sample) String() string { return fmt.Sprintf("%v=%g", s.labels, s.value) }

func (p *promAPI) get(path string, params url.Values, out any) error {
	resp, err := http.Get(p.base + path + "?" + params.Encode())
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	var env struct {
		Status string          `json:"status"`
		Error  string          `json:"error"`
		Data   json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(body, &env); err != nil {
		return fmt.Errorf("%s: HTTP %d %.200s", path, resp.StatusCode, body)
	}
	if env.Status != "success" {
		return fmt.Errorf("%s: %s", path, env.Error)
	}
	return json.Unmarshal(env.Data, out)
}

// query runs an instant query; a scalar result comes back as one sample.
func (p *promAPI) query(q string) ([]sample, error) {
	var data struct {
		ResultType string          `json:"resultType"`
		Result     json.RawMessage `json:"result"`
	}
	if err := p.get("/api/v1/query", url.Values{"query": {q}}, &data); err != nil {
		return nil, err
	}
	value := func(pair []any) float64 {
		if len(pair) != 2 {
			return 0
		}
		s, _ := pair[1].(string)
		v, _ := strconv.ParseFloat(s, 64)
		return v
	}
	switch data.ResultType {
	case "vector":
		var vec []struct {
			Metric map[string]string `json:"metric"`
			Value  []any             `json:"value"`
		}
		if err := json.Unmarshal(data.Result, &vec); err != nil {
			return nil, err
		}
		out := make([]sample, len(vec))
		for i, v := range vec {
			out[i] = sample{labels: v.Metric, value: value(v.Value)}
		}
		return out, nil
	case "scalar":
		var pair []any
		if err := json.Unmarshal(data.Result, &pair); err != nil {
			return nil, err
		}
		return []sample{{value: value(pair)}}, nil
	}
	return nil, fmt.Errorf("query %s: result type %s", q, data.ResultType)
}

// ruleHealth returns "group/name=health" for every loaded rule.
func (p *promAPI) ruleHealth() ([]string, error) {
	var data struct {
		Groups []struct {
			Name  string `json:"name"`
			Rules []struct {
				Name      string `json:"name"`
				Health    string `json:"health"`
				LastError string `json:"lastError"`
			} `json:"rules"`
		} `json:"groups"`
	}
	if err := p.get("/api/v1/rules", url.Values{}, &data); err != nil {
		return nil, err
	}
	var out []string
	for _, g := range data.Groups {
		for _, r := range g.Rules {
			out = append(out, g.Name+"/"+r.Name+"="+r.Health+r.LastError)
		}
	}
	return out, nil
}

func allValues(s []sample, ok func(float64) bool) bool {
	for _, v := range s {
		if !ok(v.value) {
			return false
		}
	}
	return true
}

// scrapeNames returns the sample names a /metrics endpoint serves.
func scrapeNames(t *testing.T, u string) []string {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatalf("scrape %s: %v", u, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, line := range strings.Split(string(body), "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if i := strings.IndexAny(line, "{ "); i > 0 {
			names = append(names, line[:i])
		}
	}
	slices.Sort(names)
	return slices.Compact(names)
}

// dashboardExprs returns every PromQL expression of the shipped dashboard:
// its panels' targets and its query variables.
func dashboardExprs(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile(dashboardPath)
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Panels []struct {
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
		Templating struct {
			List []struct {
				Type  string `json:"type"`
				Query any    `json:"query"`
			} `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("%s: %v", dashboardPath, err)
	}
	var out []string
	for _, p := range d.Panels {
		for _, tg := range p.Targets {
			out = append(out, tg.Expr)
		}
	}
	for _, v := range d.Templating.List {
		if q, ok := v.Query.(map[string]any); ok && v.Type == "query" {
			s, _ := q["query"].(string)
			out = append(out, s)
		}
	}
	return out
}

// ruleExprs returns the expr of every shipped alert rule (one line each).
func ruleExprs(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile(alertRulesPath)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, line := range strings.Split(string(b), "\n") {
		if e, ok := strings.CutPrefix(strings.TrimSpace(line), "expr: "); ok {
			out = append(out, e)
		}
	}
	return out
}
