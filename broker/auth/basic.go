package auth

import (
	"bufio"
	"bytes"
	"crypto/sha1" //nolint:gosec // htpasswd's {SHA} scheme is SHA-1 by definition
	"crypto/subtle"
	"crypto/tls"
	"encoding/base64"
	"fmt"
	"net/http"
	"strings"

	"golang.org/x/crypto/bcrypt"
)

// maxHtpasswdLine bounds one line of an htpasswd file.
const maxHtpasswdLine = 4 << 10

// maxBcryptCost bounds the cost of bcrypt entries: every authentication
// pays it (htpasswd -B uses 5 by default; 16 takes seconds).
const maxBcryptCost = 16

// BasicProvider authenticates user names and passwords against an htpasswd
// file, as Pulsar's AuthenticationProviderBasic does: the role is the user
// name. Hashes accepted: bcrypt ("$2a$", "$2b$", "$2y$"), Apache MD5
// ("$apr1$"), MD5 crypt ("$1$"), SHA-1 ("{SHA}") and traditional DES
// crypt(3).
type BasicProvider struct {
	users map[string]string // user -> hash; never changed after NewBasicProvider
}

var _ Provider = (*BasicProvider)(nil)

// NewBasicProvider reads the htpasswd file conf names (basicAuthConf: a
// "data:" or "file:" URL, a path or base64 of the content).
func NewBasicProvider(conf string) (*BasicProvider, error) {
	if strings.TrimSpace(conf) == "" {
		return nil, fmt.Errorf("%w: the basic provider needs basicAuthConf (an htpasswd file)", ErrConfig)
	}
	raw, err := ReadKeyURL("basicAuthConf", strings.TrimSpace(conf))
	if err != nil {
		return nil, err
	}
	users, err := ParseHtpasswd(raw)
	if err != nil {
		return nil, fmt.Errorf("%w: basicAuthConf: %v", ErrConfig, err)
	}
	return &BasicProvider{users: users}, nil
}

// ParseHtpasswd reads "user:hash" lines; blank lines and lines starting
// with '#' are skipped. A line without ':' , an empty user or hash, a hash
// of an unknown scheme or a repeated user is an error naming the line.
func ParseHtpasswd(raw []byte) (map[string]string, error) {
	users := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(raw))
	sc.Buffer(make([]byte, 0, 256), maxHtpasswdLine)
	n := 0
	for sc.Scan() {
		n++
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		user, hash, ok := strings.Cut(line, ":")
		if !ok || user == "" || hash == "" {
			return nil, fmt.Errorf("line %d: want user:hash", n)
		}
		if err := checkHashScheme(hash); err != nil {
			return nil, fmt.Errorf("line %d (user %q): %v", n, clip(user), err)
		}
		if _, dup := users[user]; dup {
			return nil, fmt.Errorf("line %d: user %q appears twice", n, clip(user))
		}
		users[user] = hash
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("line %d: %v", n+1, err)
	}
	return users, nil
}

// checkHashScheme says whether hash is in a scheme VerifyPassword knows.
func checkHashScheme(hash string) error {
	switch {
	case strings.HasPrefix(hash, "$2"):
		cost, err := bcrypt.Cost([]byte(hash))
		if err != nil {
			return fmt.Errorf("bcrypt hash: %v", err)
		}
		if cost > maxBcryptCost {
			return fmt.Errorf("bcrypt cost %d is above %d (each login would take seconds to minutes)", cost, maxBcryptCost)
		}
	case strings.HasPrefix(hash, "$apr1$"), strings.HasPrefix(hash, "$1$"):
		rest := hash[strings.Index(hash[1:], "$")+2:]
		if _, _, ok := strings.Cut(rest, "$"); !ok {
			return fmt.Errorf("md5 crypt hash without salt separator")
		}
	case strings.HasPrefix(hash, "{SHA}"):
		if b, err := base64.StdEncoding.DecodeString(hash[5:]); err != nil || len(b) != sha1.Size {
			return fmt.Errorf("{SHA} hash is not base64 of 20 bytes")
		}
	case strings.HasPrefix(hash, "$"):
		return fmt.Errorf("unsupported hash scheme %q (use bcrypt, $apr1$, $1$, {SHA} or crypt)", clip(hash[:strings.IndexByte(hash[1:], '$')+2]))
	default:
		if len(hash) != 13 || cryptIndex(hash[0]) < 0 || cryptIndex(hash[1]) < 0 {
			return fmt.Errorf("not a 13-character crypt(3) hash")
		}
	}
	return nil
}

// VerifyPassword reports whether password matches an htpasswd hash.
func VerifyPassword(hash string, password []byte) bool {
	var got string
	switch {
	case strings.HasPrefix(hash, "$2"):
		return bcrypt.CompareHashAndPassword([]byte(hash), password) == nil
	case strings.HasPrefix(hash, "$apr1$"), strings.HasPrefix(hash, "$1$"):
		magic := "$1$"
		if strings.HasPrefix(hash, "$apr1$") {
			magic = "$apr1$"
		}
		salt, _, ok := strings.Cut(hash[len(magic):], "$")
		if !ok {
			return false
		}
		got = md5Crypt(password, magic, salt)
	case strings.HasPrefix(hash, "{SHA}"):
		sum := sha1.Sum(password) //nolint:gosec // see import
		got = "{SHA}" + base64.StdEncoding.EncodeToString(sum[:])
	default:
		var ok bool
		if got, ok = desCrypt(password, hash); !ok {
			return false
		}
	}
	return subtle.ConstantTimeCompare([]byte(got), []byte(hash)) == 1
}

// Method implements Provider.
func (p *BasicProvider) Method() string { return MethodBasic }

// AuthenticateBinary checks "user:password" sent as auth_data.
func (p *BasicProvider) AuthenticateBinary(data []byte, _ *tls.ConnectionState) (Result, error) {
	user, pw, ok := strings.Cut(string(data), ":")
	if !ok {
		return Result{}, authErr(MethodBasic, "auth data is not user:password")
	}
	return p.check(user, pw)
}

// AuthenticateHTTP checks "Authorization: Basic base64(user:password)".
func (p *BasicProvider) AuthenticateHTTP(r *http.Request) (Result, error) {
	user, pw, ok := r.BasicAuth()
	if !ok {
		return Result{}, authErr(MethodBasic, "invalid HTTP Authorization header (want \"Basic base64(user:password)\")")
	}
	return p.check(user, pw)
}

func (p *BasicProvider) check(user, pw string) (Result, error) {
	hash, ok := p.users[user]
	if !ok || !VerifyPassword(hash, []byte(pw)) {
		// One message for both, so the answer does not reveal which users exist.
		return Result{}, authErr(MethodBasic, "unknown user or wrong password for %q", clip(user))
	}
	return Result{Role: user}, nil
}
