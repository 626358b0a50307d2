package auth

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

var testNow = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func sign(t *testing.T, m jwt.SigningMethod, key any, claims jwt.MapClaims) string {
	t.Helper()
	s, err := jwt.NewWithClaims(m, claims).SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestTokenProvider(t *testing.T) {
	secret := []byte("0123456789abcdef0123456789abcdef")
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	rsaDER, _ := x509.MarshalPKIXPublicKey(&rsaKey.PublicKey)
	rsaFile := filepath.Join(dir, "rsa.key") // DER, as "pulsar tokens create-key-pair" writes it
	if err := os.WriteFile(rsaFile, rsaDER, 0o600); err != nil {
		t.Fatal(err)
	}
	ecDER, _ := x509.MarshalPKIXPublicKey(&ecKey.PublicKey)
	ecPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: ecDER})
	future, past := testNow.Add(time.Hour).Unix(), testNow.Add(-time.Second).Unix()

	hs := Config{TokenSecretKey: "data:;base64," + base64.StdEncoding.EncodeToString(secret), Now: func() time.Time { return testNow }}
	rs := Config{TokenPublicKey: "file://" + rsaFile, Now: hs.Now}
	es := Config{TokenPublicKey: "data:;base64," + base64.StdEncoding.EncodeToString(ecPEM), TokenPublicAlg: "ES256", Now: hs.Now}
	claim := hs
	claim.TokenAuthClaim = "role"
	aud := hs
	aud.TokenAudienceClaim, aud.TokenAudience = "aud", "broker-a"

	for _, tc := range []struct {
		name  string
		cfg   Config
		token string
		role  string // "" = refused
		why   string
	}{
		{"HS256", hs, sign(t, jwt.SigningMethodHS256, secret, jwt.MapClaims{"sub": "alice"}), "alice", ""},
		{"HS256 not expired", hs, sign(t, jwt.SigningMethodHS256, secret, jwt.MapClaims{"sub": "alice", "exp": future}), "alice", ""},
		{"HS256 expired", hs, sign(t, jwt.SigningMethodHS256, secret, jwt.MapClaims{"sub": "alice", "exp": past}), "", "expired"},
		{"HS256 not yet valid", hs, sign(t, jwt.SigningMethodHS256, secret, jwt.MapClaims{"sub": "alice", "nbf": future}), "", "not valid yet"},
		{"HS256 other key", hs, sign(t, jwt.SigningMethodHS256, []byte("another key that is long enough!"), jwt.MapClaims{"sub": "a"}), "", "signature"},
		{"HS256 without sub", hs, sign(t, jwt.SigningMethodHS256, secret, jwt.MapClaims{"x": "y"}), "", "no sub claim"},
		{"none algorithm", hs, sign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, jwt.MapClaims{"sub": "a"}), "", "algorithm"},
		{"RS256", rs, sign(t, jwt.SigningMethodRS256, rsaKey, jwt.MapClaims{"sub": "bob"}), "bob", ""},
		{"RS256 expired", rs, sign(t, jwt.SigningMethodRS256, rsaKey, jwt.MapClaims{"sub": "bob", "exp": past}), "", "expired"},
		{"HS256 with the RSA public key as secret", rs, sign(t, jwt.SigningMethodHS256, rsaDER, jwt.MapClaims{"sub": "evil"}), "", "algorithm"},
		{"ES256", es, sign(t, jwt.SigningMethodES256, ecKey, jwt.MapClaims{"sub": "carol"}), "carol", ""},
		{"RS256 on an EC key", es, sign(t, jwt.SigningMethodRS256, rsaKey, jwt.MapClaims{"sub": "carol"}), "", "algorithm"},
		{"tokenAuthClaim", claim, sign(t, jwt.SigningMethodHS256, secret, jwt.MapClaims{"sub": "x", "role": "dave"}), "dave", ""},
		{"audience", aud, sign(t, jwt.SigningMethodHS256, secret, jwt.MapClaims{"sub": "e", "aud": []string{"broker-a"}}), "e", ""},
		{"wrong audience", aud, sign(t, jwt.SigningMethodHS256, secret, jwt.MapClaims{"sub": "e", "aud": "broker-b"}), "", "does not name"},
		{"malformed", hs, "a.b", "", "malformed"},
		{"blank", hs, "  ", "", "blank"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := NewTokenProvider(tc.cfg)
			if err != nil {
				t.Fatal(err)
			}
			res, err := p.Verify(tc.token)
			if tc.role != "" {
				if err != nil || res.Role != tc.role {
					t.Fatalf("got %q, %v; want role %q", res.Role, err, tc.role)
				}
				return
			}
			if err == nil || !errors.Is(err, ErrAuthentication) || !strings.Contains(err.Error(), tc.why) {
				t.Fatalf("got %q, %v; want a refusal saying %q", res.Role, err, tc.why)
			}
		})
	}
}

func TestTokenProviderConfig(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
		want string
	}{
		{"no key", Config{}, "tokenSecretKey or tokenPublicKey"},
		{"short secret", Config{TokenSecretKey: "data:,short"}, "256"},
		{"missing file", Config{TokenSecretKey: "file:///no/such/file"}, "tokenSecretKey"},
		{"not a key", Config{TokenPublicKey: "data:,not-a-key"}, "tokenPublicKey"},
		{"audience claim alone", Config{TokenSecretKey: "data:,0123456789abcdef0123456789abcdef", TokenAudienceClaim: "aud"}, "tokenAudience"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewTokenProvider(tc.cfg)
			if err == nil || !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want a configuration error naming %q", err, tc.want)
			}
		})
	}
}
