package objects

import (
	"encoding/json"
	"maps"
	"strings"
	"testing"

	meshfedv1 "github.com/meshfed/meshfed/gen/meshfed/v1"
	"google.golang.org/protobuf/proto"
)

func TestParseAuthParams(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want map[string]string
		err  string
	}{
		{"", map[string]string{}, ""},
		{"  ", map[string]string{}, ""},
		{`{"tlsCertFile":"/c.pem","tlsKeyFile":"/k.pem"}`, map[string]string{"tlsCertFile": "/c.pem", "tlsKeyFile": "/k.pem"}, ""},
		{"tlsCertFile:/c.pem,tlsKeyFile:/k.pem", map[string]string{"tlsCertFile": "/c.pem", "tlsKeyFile": "/k.pem"}, ""},
		{"privateKey:file:///etc/k.json, issuerUrl:https://auth.example.com/", map[string]string{"privateKey": "file:///etc/k.json", "issuerUrl": "https://auth.example.com/"}, ""},
		{`{"a":1}`, nil, `parameter "a": the value must be a string`},
		{`{"a":"b"} x`, nil, "text after the JSON object"},
		{`{"a":`, nil, "not a JSON object"},
		{"a:b,c", nil, `"c" is not key:value`},
		{"a:b,a:c", nil, `parameter "a" given twice`},
		{":x", nil, "is not key:value"},
	} {
		got, err := ParseAuthParams(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%q: err %v, want %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || !maps.Equal(got, tc.want) {
			t.Errorf("%q: got %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
}

func TestParseClusterAuth(t *testing.T) {
	type want struct {
		plugin, credential string
		token, password    SecretRef
		cert, key          SecretRef
		verify             bool
	}
	file := func(p string) SecretRef { return SecretRef{Source: SecretFile, Value: p} }
	env := func(n string) SecretRef { return SecretRef{Source: SecretEnv, Value: n} }
	lit := func(s string) SecretRef { return SecretRef{Source: SecretLiteral, Value: s} }
	f := false
	for _, tc := range []struct {
		name string
		a    *meshfedv1.ClusterAuth
		use  AuthUse
		want want
		errs []string
	}{
		{name: "none", a: nil, want: want{credential: "no credential (anonymous)", verify: true}},
		{name: "token file", a: &meshfedv1.ClusterAuth{AuthPlugin: "token", AuthParams: "file:///etc/meshfed/a.token"},
			want: want{plugin: "token", credential: "token from file:///etc/meshfed/a.token", token: file("/etc/meshfed/a.token"), verify: true}},
		{name: "token env, class name", a: &meshfedv1.ClusterAuth{AuthPlugin: "org.apache.pulsar.client.impl.auth.AuthenticationToken", AuthParams: "env:PULSAR_TOKEN"},
			want: want{plugin: "token", credential: "token from env:PULSAR_TOKEN", token: env("PULSAR_TOKEN"), verify: true}},
		{name: "token JSON file (pulsar-client-go)", a: &meshfedv1.ClusterAuth{AuthPlugin: "token", AuthParams: `{"file":"/t"}`},
			want: want{plugin: "token", credential: "token from file:///t", token: file("/t"), verify: true}},
		{name: "token literal refused", a: &meshfedv1.ClusterAuth{AuthPlugin: "token", AuthParams: "token:eyJhbGciOi.x.y"},
			errs: []string{"authParams: a token in clear is not accepted", "file:///path/to/it", "env:NAME"}},
		{name: "bare token refused", a: &meshfedv1.ClusterAuth{AuthPlugin: "token", AuthParams: "eyJhbGciOi.x.y"},
			errs: []string{"authParams: a token in clear is not accepted"}},
		{name: "JSON token refused", a: &meshfedv1.ClusterAuth{AuthPlugin: "token", AuthParams: `{"token":"eyJ"}`},
			errs: []string{"authParams token: a token in clear is not accepted"}},
		{name: "token literal on the command line", a: &meshfedv1.ClusterAuth{AuthPlugin: "token", AuthParams: "token:eyJ"}, use: AuthOnCommandLine,
			want: want{plugin: "token", credential: "token from a value given in clear", token: lit("eyJ"), verify: true}},
		{name: "token relative file", a: &meshfedv1.ClusterAuth{AuthPlugin: "token", AuthParams: `{"file":"t.jwt"}`},
			errs: []string{`authParams file: "t.jwt" is not an absolute path`}},
		{name: "token relative file on the command line", a: &meshfedv1.ClusterAuth{AuthPlugin: "token", AuthParams: `{"file":"t.jwt"}`}, use: AuthOnCommandLine,
			want: want{plugin: "token", credential: "token from file://t.jwt", token: file("t.jwt"), verify: true}},
		{name: "token bad file URL", a: &meshfedv1.ClusterAuth{AuthPlugin: "token", AuthParams: "file://host/x"},
			errs: []string{"authParams: \"file://host/x\" is not a file URL"}},
		{name: "token bad env", a: &meshfedv1.ClusterAuth{AuthPlugin: "token", AuthParams: "env:1X"},
			errs: []string{"is not an environment variable name"}},
		{name: "token empty", a: &meshfedv1.ClusterAuth{AuthPlugin: "token"}, errs: []string{"authParams: token needs the token's location"}},
		{name: "basic", a: &meshfedv1.ClusterAuth{AuthPlugin: "basic", AuthParams: `{"userId":"alice","password":"env:PW"}`},
			want: want{plugin: "basic", credential: `basic credentials of user "alice" (password from env:PW)`, password: env("PW"), verify: true}},
		{name: "basic pairs", a: &meshfedv1.ClusterAuth{AuthPlugin: "org.apache.pulsar.client.impl.auth.AuthenticationBasic", AuthParams: "username:bob,password:file:///p"},
			want: want{plugin: "basic", credential: `basic credentials of user "bob" (password from file:///p)`, password: file("/p"), verify: true}},
		{name: "basic password in clear", a: &meshfedv1.ClusterAuth{AuthPlugin: "basic", AuthParams: `{"username":"a","password":"hunter2"}`},
			errs: []string{"authParams password: a password in clear is not accepted"}},
		{name: "basic no user", a: &meshfedv1.ClusterAuth{AuthPlugin: "basic", AuthParams: `{"password":"env:P"}`},
			errs: []string{`basic needs "username"`}},
		{name: "oauth2", a: &meshfedv1.ClusterAuth{AuthPlugin: "oauth2", AuthParams: `{"type":"client_credentials","issuerUrl":"https://auth.example.com","audience":"urn:pulsar","privateKey":"file:///etc/meshfed/creds.json"}`},
			want: want{plugin: "oauth2", credential: "OAuth2 client credentials from file:///etc/meshfed/creds.json (issuer https://auth.example.com)", verify: true}},
		{name: "oauth2 data URL refused", a: &meshfedv1.ClusterAuth{AuthPlugin: "oauth2", AuthParams: `{"issuerUrl":"https://a","privateKey":"data:application/json;base64,e30="}`},
			errs: []string{"privateKey: a data: URL holds the client credentials in clear"}},
		{name: "oauth2 no issuer, unknown key", a: &meshfedv1.ClusterAuth{AuthPlugin: "oauth2", AuthParams: `{"privateKey":"env:K","clientSecret":"s"}`},
			errs: []string{`unknown parameter "clientSecret"`, `oauth2 needs "issuerUrl"`}},
		{name: "oauth2 bad type", a: &meshfedv1.ClusterAuth{AuthPlugin: "oauth2", AuthParams: `{"type":"device","issuerUrl":"https://a","privateKey":"env:K"}`},
			errs: []string{"only client_credentials"}},
		{name: "tls plugin", a: &meshfedv1.ClusterAuth{AuthPlugin: "tls", AuthParams: "tlsCertFile:/c.pem,tlsKeyFile:/k.pem", TlsTrustCertsFilePath: "/ca.pem"},
			want: want{plugin: "tls", credential: "TLS client certificate file:///c.pem", cert: file("/c.pem"), key: file("/k.pem"), verify: true}},
		{name: "tls plugin with the TLS fields", a: &meshfedv1.ClusterAuth{AuthPlugin: "tls", TlsCertificateFilePath: "file:///c.pem", TlsKeyFilePath: "env:KEY"},
			want: want{plugin: "tls", credential: "TLS client certificate file:///c.pem", cert: file("/c.pem"), key: env("KEY"), verify: true}},
		{name: "tls plugin without files", a: &meshfedv1.ClusterAuth{AuthPlugin: "tls"}, errs: []string{"tls needs a client certificate and key"}},
		{name: "tls key in clear", a: &meshfedv1.ClusterAuth{AuthPlugin: "tls", TlsCertificateFilePath: "/c.pem", TlsKeyFilePath: "-----BEGIN PRIVATE KEY-----\nMII"},
			errs: []string{"tlsKeyFilePath: PEM content in clear is not accepted"}},
		{name: "mutual TLS without plugin, no hostname check", a: &meshfedv1.ClusterAuth{TlsCertificateFilePath: "/c.pem", TlsKeyFilePath: "/k.pem", TlsEnableHostnameVerification: &f},
			want: want{credential: "no authentication plugin, TLS client certificate file:///c.pem", cert: file("/c.pem"), key: file("/k.pem")}},
		{name: "cert without key", a: &meshfedv1.ClusterAuth{TlsCertificateFilePath: "/c.pem"}, errs: []string{"tlsKeyFilePath: required with tlsCertificateFilePath"}},
		{name: "trust file relative", a: &meshfedv1.ClusterAuth{TlsTrustCertsFilePath: "ca.pem"}, errs: []string{`tlsTrustCertsFilePath: "ca.pem" is not an absolute path`}},
		{name: "trust file env", a: &meshfedv1.ClusterAuth{TlsTrustCertsFilePath: "env:CA"}, errs: []string{"tlsTrustCertsFilePath: \"env:CA\": give a file path"}},
		{name: "unknown plugin", a: &meshfedv1.ClusterAuth{AuthPlugin: "kerberos"}, errs: []string{`authPlugin: "kerberos" is not a supported plugin`}},
		{name: "params without plugin", a: &meshfedv1.ClusterAuth{AuthParams: "file:///t"}, errs: []string{"authPlugin: required when authParams is set"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := ParseClusterAuth(tc.a, tc.use)
			if len(tc.errs) > 0 {
				if err == nil {
					t.Fatalf("no error, want %q", tc.errs)
				}
				for _, w := range tc.errs {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q does not say %q", err, w)
					}
				}
				if AsFieldErrors(err) == nil {
					t.Errorf("error %v is not a FieldErrors", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			w := tc.want
			got := want{plugin: p.Plugin, credential: p.Credential(), token: p.Token, password: p.Password, cert: p.CertFile, key: p.KeyFile, verify: p.VerifyHostname}
			if got != w {
				t.Fatalf("got %+v\nwant %+v", got, w)
			}
		})
	}
}

func TestValidateClusterAuth(t *testing.T) {
	c := func(svc, admin string, a *meshfedv1.ClusterAuth) *meshfedv1.Cluster {
		x := validCluster()
		x.Spec.ServiceUrl, x.Spec.AdminUrl, x.Spec.Auth = svc, admin, a
		return x
	}
	runValidate(t, []vcase{
		{"token over TLS", c("pulsar+ssl://b:6651", "https://b:8443", &meshfedv1.ClusterAuth{AuthPlugin: "token", AuthParams: "file:///etc/t",
			TlsTrustCertsFilePath: "/etc/ca.pem"}), nil},
		{"token in clear", c("pulsar+ssl://b:6651", "", &meshfedv1.ClusterAuth{AuthPlugin: "token", AuthParams: "token:abc"}),
			[]wantErr{e("spec.auth.authParams", "a token in clear is not accepted")}},
		{"TLS settings without TLS URLs", c("pulsar://b:6650", "http://b:8080", &meshfedv1.ClusterAuth{TlsTrustCertsFilePath: "/ca.pem"}),
			[]wantErr{e("spec.auth", "neither serviceURL (pulsar+ssl://) nor adminURL (https://) uses TLS")}},
		{"admin over TLS only", c("pulsar://b:6650", "https://b:8443", &meshfedv1.ClusterAuth{TlsTrustCertsFilePath: "/ca.pem"}), nil},
	})
}

// The secret references survive YAML: a Cluster's spec.auth decodes, with
// Pulsar's client.conf names, and an unset hostname verification stays
// unset (on).
func TestDecodeClusterAuth(t *testing.T) {
	doc := `apiVersion: meshfed.io/v1
kind: Cluster
metadata: {name: a}
spec:
  serviceURL: pulsar+ssl://broker-a:6651
  adminURL: https://broker-a:8443
  auth:
    authPlugin: org.apache.pulsar.client.impl.auth.oauth2.AuthenticationOAuth2
    authParams: '{"issuerUrl":"https://auth.example.com","audience":"urn:pulsar","privateKey":"file:///etc/meshfed/a.json"}'
    tlsTrustCertsFilePath: /etc/meshfed/ca.pem
    tlsCertificateFilePath: /etc/meshfed/agent.pem
    tlsKeyFilePath: env:AGENT_KEY
`
	objs, err := DecodeOptions{}.Decode("c.yaml", []byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	a := objs[0].GetCluster().GetSpec().GetAuth()
	if a.TlsEnableHostnameVerification != nil || a.GetTlsKeyFilePath() != "env:AGENT_KEY" {
		t.Fatalf("decoded %v", a)
	}
	if err := Validate(objs[0]); err != nil {
		t.Fatal(err)
	}
	off := strings.Replace(doc, "tlsKeyFilePath: env:AGENT_KEY", "tlsKeyFilePath: env:AGENT_KEY\n    tlsEnableHostnameVerification: false", 1)
	objs, err = DecodeOptions{}.Decode("c.yaml", []byte(off))
	if err != nil {
		t.Fatal(err)
	}
	if a := objs[0].GetCluster().GetSpec().GetAuth(); a.TlsEnableHostnameVerification == nil || a.GetTlsEnableHostnameVerification() {
		t.Fatalf("hostname verification not decoded as false: %v", a)
	}
}

// FuzzParseAuthParams: any parameter string parses or fails with an error,
// never panics; what parses survives a JSON round trip unchanged; and a
// ClusterAuth built from it never yields both an error and a result, nor a
// literal secret in an object.
func FuzzParseAuthParams(f *testing.F) {
	for _, s := range []string{"", "file:///etc/t", "env:T", "token:abc", `{"file":"/t"}`, `{"token":"x"}`,
		"tlsCertFile:/c,tlsKeyFile:/k", `{"issuerUrl":"https://a","privateKey":"data:,{}"}`, "a:b,a:c", `{"a":1}`, "username:u,password:env:P"} {
		f.Add(s, "token")
		f.Add(s, "basic")
		f.Add(s, "oauth2")
		f.Add(s, "tls")
	}
	f.Fuzz(func(t *testing.T, params, plugin string) {
		m, err := ParseAuthParams(params)
		if err == nil {
			b, jerr := json.Marshal(m)
			if jerr != nil {
				t.Fatal(jerr)
			}
			again, err := ParseAuthParams(string(b))
			if err != nil || !maps.Equal(m, again) {
				t.Fatalf("%q parsed as %v, whose JSON %s parses as %v, %v", params, m, b, again, err)
			}
		}
		for _, use := range []AuthUse{AuthInObject, AuthOnCommandLine} {
			a := &meshfedv1.ClusterAuth{AuthPlugin: plugin, AuthParams: params}
			before := proto.Clone(a)
			p, err := ParseClusterAuth(a, use)
			if !proto.Equal(a, before) {
				t.Fatal("ParseClusterAuth changed its input")
			}
			if (p == nil) == (err == nil) {
				t.Fatalf("result %v with error %v", p, err)
			}
			if err != nil {
				checkFieldErrors(t, err, "")
				continue
			}
			if use == AuthInObject {
				for _, r := range []SecretRef{p.Token, p.Password, p.PrivateKey, p.CertFile, p.KeyFile} {
					if r.Source == SecretLiteral {
						t.Fatalf("%q/%q: a literal secret accepted in an object", plugin, params)
					}
				}
			}
			_ = p.Credential()
		}
	})
}
