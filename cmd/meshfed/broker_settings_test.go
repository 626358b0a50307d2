package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"

	"github.com/meshfed/meshfed/broker"
)

func TestBrokerSettings(t *testing.T) {
	conf := filepath.Join(t.TempDir(), "broker.conf")
	if err := os.WriteFile(conf, []byte(`# a broker.conf
bindAddress=0.0.0.0
brokerServicePort=6650
brokerServicePortTls=6651
webServicePort=8080
webServicePortTls=8443
advertisedAddress=localhost
authenticationEnabled=true
authenticationProviders=org.apache.pulsar.broker.authentication.AuthenticationProviderTls, token
tokenSecretKey=file:///pulsar/tokens/secret.key
superUserRoles=localhost,superUser,admin
authorizationEnabled=false
authenticationRefreshCheckSeconds=5
managedLedgerDefaultEnsembleSize=1
zookeeperServers=
`), 0o600); err != nil {
		t.Fatal(err)
	}
	file, ignored, err := readBrokerConf(conf)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(ignored, ",") != "managedLedgerDefaultEnsembleSize" {
		t.Fatalf("ignored %v", ignored)
	}
	f := pflag.NewFlagSet("broker", pflag.ContinueOnError)
	f.String("listen", "", "")
	f.String("http-addr", "", "")
	vals := addBrokerSettingFlags(f)
	if err := f.Parse([]string{"--authorizationEnabled", "--bindAddress", "127.0.0.1"}); err != nil {
		t.Fatal(err)
	}
	var cfg broker.Config
	if err := applyBrokerSettings(&cfg, file, f, vals); err != nil {
		t.Fatal(err)
	}
	want := broker.Config{ListenAddr: "127.0.0.1:6650", HTTPAddr: "127.0.0.1:8080", TLSListenAddr: "127.0.0.1:6651",
		HTTPSAddr: "127.0.0.1:8443", AdvertisedAddr: "localhost"}
	if cfg.ListenAddr != want.ListenAddr || cfg.HTTPAddr != want.HTTPAddr || cfg.TLSListenAddr != want.TLSListenAddr ||
		cfg.HTTPSAddr != want.HTTPSAddr || cfg.AdvertisedAddr != want.AdvertisedAddr {
		t.Fatalf("listeners %+v", cfg)
	}
	if !cfg.Auth.Enabled || !cfg.Authorization.Enabled || len(cfg.Auth.Providers.Providers) != 2 ||
		cfg.Auth.Providers.TokenSecretKey != "file:///pulsar/tokens/secret.key" || cfg.Auth.RefreshCheck != 5*time.Second ||
		strings.Join(cfg.Authorization.SuperUserRoles, ",") != "localhost,superUser,admin" {
		t.Fatalf("security %+v %+v", cfg.Auth, cfg.Authorization)
	}
}

func TestBrokerSettingErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--authenticationEnabled=maybe"}, "--authenticationEnabled authenticationEnabled: want true or false"},
		{[]string{"--brokerServicePortTls=70000"}, "want a port number"},
		{[]string{"--authenticationRefreshCheckSeconds=soon"}, "seconds"},
	} {
		f := pflag.NewFlagSet("broker", pflag.ContinueOnError)
		vals := addBrokerSettingFlags(f)
		if err := f.Parse(tc.args); err != nil {
			t.Fatal(err)
		}
		var cfg broker.Config
		if err := applyBrokerSettings(&cfg, nil, f, vals); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: got %v, want %q", tc.args, err, tc.want)
		}
	}
	if out, code := runCLI(t, "broker", "--data-dir", t.TempDir(), "--config", "/no/such/file"); code != 2 || !strings.Contains(out, "--config") {
		t.Fatalf("missing config: exit %d, output %s", code, out)
	}
	// Every flag has help text.
	cmd := newBrokerCmd()
	cmd.Flags().VisitAll(func(fl *pflag.Flag) {
		if strings.TrimSpace(fl.Usage) == "" {
			t.Errorf("flag --%s has no help text", fl.Name)
		}
	})
}
