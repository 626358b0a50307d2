package dev

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/meshfed/meshfed/internal/browser"
	"github.com/meshfed/meshfed/internal/testkit"
)

// pageState is what the mesh page shows, read from its DOM.
type pageState struct {
	Polls int `json:"polls"`
	// Lanes are the clusters the graph draws a lane for; Health each
	// cluster's health as the page shows it, MeshHealth the mesh's.
	Lanes      []string          `json:"lanes"`
	Health     map[string]string `json:"health"`
	MeshHealth string            `json:"meshHealth"`
	// Instances are the instance table's rows.
	Instances []pageInstance `json:"instances"`
	// SplitProcessed is the split function's processed counter as drawn
	// in the graph; SplitRate its "in … · out …" line.
	SplitProcessed string `json:"splitProcessed"`
	SplitRate      string `json:"splitRate"`
	SplitRateOut   string `json:"splitRateOut"`
}

type pageInstance struct {
	Function string `json:"function"`
	Cluster  string `json:"cluster"`
	Agent    string `json:"agent"`
	State    string `json:"state"`
}

const readPage = `(() => {
  const mesh = document.querySelector('section[data-mesh="public/default/word-count"]');
  const split = mesh && mesh.querySelector('g.fn[data-function="split"]');
  const rate = split && split.querySelector('text.rate');
  return {
    polls: Number(document.body.dataset.polls || 0),
    lanes: mesh ? [...mesh.querySelectorAll('g.lane')].map(g => g.dataset.cluster) : [],
    health: Object.fromEntries([...document.querySelectorAll('#federation .cluster[data-cluster]')].map(c => [c.dataset.cluster, c.dataset.health])),
    meshHealth: mesh ? mesh.dataset.health : "",
    instances: mesh ? [...mesh.querySelectorAll('tr.instance')].map(r => ({function: r.dataset.function, cluster: r.dataset.cluster, agent: r.dataset.agent, state: r.dataset.state})) : [],
    splitProcessed: split ? split.dataset.processed : "",
    splitRate: rate ? rate.textContent : "",
    splitRateOut: rate ? rate.dataset.rateOut : "",
  };
})()`

// TestMeshPageInChromium opens /ui of a dev federation of two clusters,
// with sentences flowing through the example mesh, in headless Chromium,
// and checks that the page draws both clusters and their health, the
// mesh's health, where each instance runs (agent, cluster, state) and
// counters that move from one poll to the next. MESHFED_UI_SCREENSHOT
// names a file for a screenshot of the page (docs/ui.png is made so).
func TestMeshPageInChromium(t *testing.T) {
	bctx := browser.Start(t, 1360, 900)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	f := startDev(ctx, t, t.TempDir(), 2, func(c *Config) { c.TrafficRate = 20 })
	defer f.Stop()

	if _, err := chromedp.Run(bctx, chromedp.Navigate(f.Info.ServerHTTP+"/ui")); err != nil {
		t.Fatalf("open %s/ui: %v", f.Info.ServerHTTP, err)
	}
	read := func() (pageState, error) {
		st, err := chromedp.Run(bctx, chromedp.Evaluate[pageState](readPage))
		if err != nil {
			return st, fmt.Errorf("read the page: %w", err)
		}
		return st, nil
	}

	// Both clusters drawn, split running on a's agent, count on b's.
	want := []pageInstance{
		{Function: "split", Cluster: "a", Agent: f.Info.Clusters[0].Agent, State: "Running"},
		{Function: "count", Cluster: "b", Agent: f.Info.Clusters[1].Agent, State: "Running"},
	}
	var st pageState
	testkit.Eventually(t, 90*time.Second, "the graph of both clusters with every instance running", func() (err error) {
		if st, err = read(); err != nil {
			return err
		}
		if !slices.Contains(st.Lanes, "a") || !slices.Contains(st.Lanes, "b") {
			return fmt.Errorf("lanes %v, want a and b", st.Lanes)
		}
		if st.Health["a"] != "Healthy" || st.Health["b"] != "Healthy" || st.MeshHealth != "Ready" {
			return fmt.Errorf("cluster health %v, mesh %q; want Healthy clusters and a Ready mesh", st.Health, st.MeshHealth)
		}
		for _, w := range want {
			if !slices.Contains(st.Instances, w) {
				return fmt.Errorf("instances %+v, want %+v among them", st.Instances, w)
			}
		}
		return nil
	})

	// The counters move from one poll to the next while sentences flow,
	// and the rate shown is above zero.
	first := st
	testkit.Eventually(t, 30*time.Second, "split's processed counter to change between polls", func() (err error) {
		if st, err = read(); err != nil {
			return err
		}
		if st.Polls <= first.Polls || st.SplitProcessed == first.SplitProcessed || st.SplitProcessed == "" {
			return fmt.Errorf("poll %d: processed %q (poll %d: %q)", st.Polls, st.SplitProcessed, first.Polls, first.SplitProcessed)
		}
		return nil
	})
	testkit.Eventually(t, 30*time.Second, "a positive output rate for split", func() (err error) {
		if st, err = read(); err != nil {
			return err
		}
		var r float64
		if _, err := fmt.Sscan(st.SplitRateOut, &r); err != nil || r <= 0 {
			return fmt.Errorf("rate %q (%q)", st.SplitRateOut, st.SplitRate)
		}
		return nil
	})
	t.Logf("page after %d polls: split %s, processed %s -> %s", st.Polls, st.SplitRate, first.SplitProcessed, st.SplitProcessed)

	if out := os.Getenv("MESHFED_UI_SCREENSHOT"); out != "" {
		png, err := chromedp.Run(bctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatalf("screenshot: %v", err)
		}
		if err := os.WriteFile(filepath.Clean(out), png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
