// Package prometheus holds the Prometheus alert rules meshfed ships
// (meshfed-alerts.yml) and their tests.
package prometheus

import (
	"os/exec"
	"testing"
)

// TestAlertRules checks the shipped rules with promtool (check rules: they
// load; test rules: each alert fires on the synthetic series of
// meshfed-alerts_test.yml, and not before it should).
func TestAlertRules(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Skip("promtool is not installed (Debian: apt-get install prometheus; .ci/run installs it), so the alert rules are not checked")
	}
	for _, args := range [][]string{{"check", "rules", "meshfed-alerts.yml"}, {"test", "rules", "meshfed-alerts_test.yml"}} {
		out, err := exec.Command(promtool, args...).CombinedOutput()
		if err != nil {
			t.Errorf("promtool %v: %v\n%s", args, err, out)
		}
	}
}
