// Package grafana holds the Grafana dashboard meshfed ships
// (meshfed-federation.json) and its tests. e2e/prometheus_test.go checks
// its expressions against a running federation and a real Prometheus.
package grafana

import (
	"encoding/json"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/meshfed/meshfed/telemetry"
)

type dashboard struct {
	UID    string `json:"uid"`
	Panels []struct {
		Type       string         `json:"type"`
		Title      string         `json:"title"`
		Datasource map[string]any `json:"datasource"`
		Targets    []struct {
			Expr string `json:"expr"`
		} `json:"targets"`
	} `json:"panels"`
	Templating struct {
		List []struct {
			Name  string `json:"name"`
			Type  string `json:"type"`
			Query any    `json:"query"`
		} `json:"list"`
	} `json:"templating"`
}

// TestDashboard checks that the dashboard parses, that every panel queries
// the chosen Prometheus data source, and that every metric its expressions
// and the alert rules name is documented in docs/observability.md.
func TestDashboard(t *testing.T) {
	b, err := os.ReadFile("meshfed-federation.json")
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("meshfed-federation.json: %v", err)
	}
	if d.UID == "" {
		t.Error("dashboard has no uid")
	}
	var exprs []string
	for _, p := range d.Panels {
		if p.Type == "row" {
			continue
		}
		if p.Datasource["uid"] != "${datasource}" {
			t.Errorf("panel %q: data source %v, want the ${datasource} variable", p.Title, p.Datasource)
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			if strings.TrimSpace(tg.Expr) == "" {
				t.Errorf("panel %q has an empty query", p.Title)
			}
			exprs = append(exprs, tg.Expr)
		}
	}
	vars := map[string]bool{}
	for _, v := range d.Templating.List {
		vars[v.Name] = true
		if q, ok := v.Query.(map[string]any); ok {
			s, _ := q["query"].(string)
			exprs = append(exprs, s)
		}
	}
	for _, e := range exprs {
		for _, m := range regexp.MustCompile(`\$([a-z_]+)`).FindAllStringSubmatch(e, -1) {
			if !vars[m[1]] && !strings.HasPrefix(m[1], "__") {
				t.Errorf("expression %q uses $%s, which the dashboard does not define", e, m[1])
			}
		}
	}
	rules, err := os.ReadFile("../prometheus/meshfed-alerts.yml")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(rules), "\n") {
		if e, ok := strings.CutPrefix(strings.TrimSpace(line), "expr: "); ok {
			exprs = append(exprs, e)
		}
	}
	docs, err := os.ReadFile("../../docs/observability.md")
	if err != nil {
		t.Fatal(err)
	}
	documented := func(name string) bool {
		if name == "up" {
			return true // Prometheus' own
		}
		for _, p := range []string{"go_", "process_"} {
			if strings.HasPrefix(name, p) && strings.Contains(string(docs), "`"+p+"*`") {
				return true
			}
		}
		for _, suffix := range []string{"", "_bucket", "_sum", "_count"} {
			if base, ok := strings.CutSuffix(name, suffix); ok && strings.Contains(string(docs), "`"+base+"`") {
				return true
			}
		}
		return false
	}
	n := 0
	for _, e := range exprs {
		for _, name := range telemetry.MetricNames(e) {
			n++
			if !documented(name) {
				t.Errorf("%q names %s, which docs/observability.md does not list", e, name)
			}
		}
	}
	if n == 0 {
		t.Fatal("no metric names found in the dashboard and rules")
	}
}
