package pulsarauth

import (
	"testing"
	"time"
)

// FuzzJWTExpiry: the expiry reader takes any token file's content without
// panicking, and an expiry it reports round-trips through the claims.
func FuzzJWTExpiry(f *testing.F) {
	f.Add(jwt(`{"sub":"a","exp":1790000000}`))
	f.Add(jwt(`{"sub":"a","exp":1.79e9}`))
	f.Add(jwt(`{"sub":"a"}`))
	f.Add("not-a-jwt")
	f.Add("a.b.c")
	f.Add("")
	f.Fuzz(func(t *testing.T, token string) {
		exp, ok := jwtExpiry(token)
		if ok && (exp.Before(time.Unix(1, 0)) || exp.After(time.Unix(1<<40, 0))) {
			t.Fatalf("implausible expiry %v from %q", exp, token)
		}
	})
}
