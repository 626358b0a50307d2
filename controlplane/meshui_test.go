package controlplane

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/meshfed/meshfed/controlplane/meshui"
	meshfedv1 "github.com/meshfed/meshfed/gen/meshfed/v1"
	"github.com/meshfed/meshfed/internal/browser"
	"github.com/meshfed/meshfed/internal/testkit"
	"github.com/meshfed/meshfed/security"
)

// The mesh page's data is served to the callers the Functions REST API
// accepts (a bearer token over TLS with --auth); the page itself holds no
// data and is served to anyone.
func TestMeshPageAuthenticatesAsTheRESTAPI(t *testing.T) {
	_, s, token := secureServer(t)
	tlsClient := httpsClient(t, s.cfg.TLS.CA)
	base := "https://" + s.HTTPAddr()
	if code, body := httpGet(t, tlsClient, base+meshui.Prefix, ""); code != http.StatusOK || !strings.Contains(body, "app.js") {
		t.Errorf("the page without a token: %d %.80s", code, body)
	}
	for _, tt := range []struct {
		name   string
		client *http.Client
		url    string
		token  string
		code   int
		reason string
	}{
		{"token in plaintext", &http.Client{Timeout: 10 * time.Second}, "http://" + s.HTTPAddr() + meshui.APIPath, token, http.StatusUnauthorized, "requires TLS"},
		{"no token", tlsClient, base + meshui.APIPath, "", http.StatusUnauthorized, "bearer token"},
		{"forged token", tlsClient, base + meshui.APIPath, "mft1.forged", http.StatusUnauthorized, "token refused"},
		{"bootstrap token", tlsClient, base + meshui.APIPath, token, http.StatusOK, ""},
	} {
		code, body := httpGet(t, tt.client, tt.url, tt.token)
		if code != tt.code {
			t.Errorf("%s: %d %s, want %d", tt.name, code, body, tt.code)
			continue
		}
		if tt.reason != "" {
			var e struct{ Reason string }
			if err := json.Unmarshal([]byte(body), &e); err != nil || !strings.Contains(e.Reason, tt.reason) {
				t.Errorf("%s: %s, want a reason containing %q", tt.name, body, tt.reason)
			}
			continue
		}
		var v meshui.View
		if err := json.Unmarshal([]byte(body), &v); err != nil || v.Meshes == nil || len(v.Hidden) != 0 {
			t.Errorf("%s: view %s (%v)", tt.name, body, err)
		}
	}
}

// In Chromium, the page of a server with --auth asks for a token, shows
// why, and shows the federation once given one; the token given in the
// address (#token=) works too and leaves the address bar.
func TestMeshPageTokenInChromium(t *testing.T) {
	tab := browser.Start(t, 1024, 768, chromedp.Flag("ignore-certificate-errors", true))
	pki, s, token := secureServer(t)
	su := pki.Dial(s.GRPCAddr(), pki.Files(security.RoleClient, "cli", ""), token)
	if _, err := meshfedv1.NewObjectServiceClient(su).Apply(context.Background(), &meshfedv1.ApplyRequest{Objects: decodeAll(t, authzBase+"---"+authzMesh)}); err != nil {
		t.Fatal(err)
	}
	page := "https://" + s.HTTPAddr() + meshui.Prefix
	type shown struct {
		Login    bool   `json:"login"`
		Reason   string `json:"reason"`
		Clusters int    `json:"clusters"`
		Meshes   int    `json:"meshes"`
		Hash     string `json:"hash"`
	}
	const read = `({login: !document.getElementById("login").hidden, reason: document.getElementById("login-reason").textContent,
		clusters: document.querySelectorAll("#federation .cluster[data-cluster]").length,
		meshes: document.querySelectorAll("section[data-mesh]").length, hash: location.hash})`
	wait := func(what string, ok func(shown) bool) {
		t.Helper()
		testkit.Eventually(t, 30*time.Second, what, func() (bool, string) {
			got, err := chromedp.Run(tab, chromedp.Evaluate[shown](read))
			return err == nil && ok(got), fmt.Sprintf("%+v %v", got, err)
		})
	}
	if _, err := chromedp.Run(tab, chromedp.Navigate(page)); err != nil {
		t.Fatal(err)
	}
	wait("the token form, saying why", func(s shown) bool {
		return s.Login && strings.Contains(s.Reason, "bearer token") && s.Meshes == 0
	})
	submit := fmt.Sprintf(`document.getElementById("token").value = %s; document.getElementById("login").requestSubmit(); true`, strconv.Quote(token))
	if _, err := chromedp.Run(tab, chromedp.Evaluate[bool](submit)); err != nil {
		t.Fatal(err)
	}
	wait("the federation after the token was given", func(s shown) bool { return !s.Login && s.Clusters == 2 && s.Meshes == 1 })

	// A new session: the token in the address.
	tab2, cancel := chromedp.NewContext(tab)
	defer cancel()
	tab = tab2
	if _, err := chromedp.Run(tab, chromedp.Navigate(page+"#token="+token)); err != nil {
		t.Fatal(err)
	}
	wait("the federation with #token=, and the token out of the address", func(s shown) bool {
		return !s.Login && s.Meshes == 1 && s.Hash == ""
	})
}
