package auth

import (
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// FuzzTokenVerify feeds arbitrary tokens to the HS256 verifier: it must
// never panic, and anything it accepts has a role.
func FuzzTokenVerify(f *testing.F) {
	secret := []byte("0123456789abcdef0123456789abcdef")
	good, err := NewTokenHS256(secret, "alice", time.Time{})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	p, err := NewTokenProvider(Config{TokenSecretKey: "data:,0123456789abcdef0123456789abcdef"})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, tok string) {
		res, err := p.Verify(tok)
		if err == nil && res.Role == "" {
			t.Fatalf("accepted %q without a role", tok)
		}
	})
}

// FuzzParseHtpasswd feeds arbitrary files to the htpasswd parser: it must
// never panic, and every user it accepts can be checked.
func FuzzParseHtpasswd(f *testing.F) {
	f.Add([]byte("admin:$apr1$FG4AO6aX$KGYPuMoLUou3i6vUkPUUf.\n"))
	f.Fuzz(func(t *testing.T, raw []byte) {
		users, err := ParseHtpasswd(raw)
		if err != nil {
			return
		}
		for u, h := range users {
			if u == "" || h == "" {
				t.Fatalf("empty user or hash in %q", raw)
			}
			if cost, err := bcrypt.Cost([]byte(h)); err == nil && cost > 6 {
				continue // valid but slow to check; not what is fuzzed here
			}
			_ = VerifyPassword(h, []byte("x"))
		}
	})
}
