package auth

import (
	"net/http"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"
)

func TestHtpasswdSchemes(t *testing.T) {
	b, err := bcrypt.GenerateFromPassword([]byte("123456"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	file := strings.Join([]string{
		"# users",
		"admin:$apr1$FG4AO6aX$KGYPuMoLUou3i6vUkPUUf.", // pulsar-client-go's integration-tests/conf/.htpasswd
		"md5:$1$FG4AO6aX$SjM2ybVttOaBSz21zy958/",
		"sha:{SHA}fEqNCco3Yq9h5ZUglD3CZJT4lBs=",
		"des:Xy2br74T09EYU",
		"bcrypt:" + string(b),
		"bcrypt2y:$2y$" + string(b)[4:],
		"",
	}, "\n")
	p, err := NewBasicProvider("data:," + strings.ReplaceAll(file, "\n", "%0A"))
	if err != nil {
		t.Fatal(err)
	}
	for _, user := range []string{"admin", "md5", "sha", "des", "bcrypt", "bcrypt2y"} {
		t.Run(user, func(t *testing.T) {
			if res, err := p.AuthenticateBinary([]byte(user+":123456"), nil); err != nil || res.Role != user {
				t.Fatalf("right password: %q, %v", res.Role, err)
			}
			if _, err := p.AuthenticateBinary([]byte(user+":1234567"), nil); err == nil {
				t.Fatal("wrong password accepted")
			}
			r, _ := http.NewRequest(http.MethodGet, "/", nil)
			r.SetBasicAuth(user, "123456")
			if res, err := p.AuthenticateHTTP(r); err != nil || res.Role != user {
				t.Fatalf("HTTP: %q, %v", res.Role, err)
			}
		})
	}
	if _, err := p.AuthenticateBinary([]byte("nobody:123456"), nil); err == nil {
		t.Fatal("unknown user accepted")
	}
}

func TestHtpasswdErrors(t *testing.T) {
	for _, tc := range []struct{ file, want string }{
		{"nocolon", "line 1: want user:hash"},
		{"ok:Xy2br74T09EYU\n:abc", "line 2"},
		{"u:$5$rounds$x", "unsupported hash scheme"},
		{"u:short", "crypt(3)"},
		{"u:{SHA}bm90LTIwLWJ5dGVz", "{SHA}"},
		{"u:$2a$99$abc", "bcrypt"},
		{"u:Xy2br74T09EYU\nu:Xy2br74T09EYU", "twice"},
	} {
		if _, err := ParseHtpasswd([]byte(tc.file)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: got %v, want an error with %q", tc.file, err, tc.want)
		}
	}
}
