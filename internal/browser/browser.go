// Package browser starts headless Chromium for tests (the mesh page's),
// driven with chromedp. It is test support: only tests import it, so
// neither chromedp nor package testing is linked into meshfed.
package browser

import (
	"context"
	"os"
	"os/exec"
	"testing"

	"github.com/chromedp/chromedp"
)

// RequireEnv, when set, makes a missing Chromium fail tests instead of
// skipping them (CI sets it).
const RequireEnv = "MESHFED_REQUIRE_CHROMIUM"

// Path returns the Chromium executable, skipping the test when there is
// none unless RequireEnv is set.
func Path(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv(RequireEnv) != "" {
		t.Fatalf("chromium not found and %s is set (apt-get install chromium)", RequireEnv)
	}
	t.Skipf("chromium not found (apt-get install chromium); set %s=1 to fail instead", RequireEnv)
	return ""
}

// Start starts headless Chromium, with a user data directory of its own
// and a window of width × height, and returns a chromedp context of one
// tab; the browser is stopped when the test ends.
func Start(t *testing.T, width, height int, opts ...chromedp.ExecAllocatorOption) context.Context {
	t.Helper()
	all := append([]chromedp.ExecAllocatorOption{
		chromedp.ExecPath(Path(t)),
		chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(width, height),
	}, opts...)
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), all...)
	ctx, cancel := chromedp.NewContext(alloc)
	t.Cleanup(func() {
		cancel()
		cancelAlloc()
	})
	return ctx
}
