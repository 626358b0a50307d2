package auth

import (
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// maxTokenLen bounds the tokens parsed (Pulsar imposes none; a JWT of any
// real use is far below it).
const maxTokenLen = 64 << 10

// TokenProvider authenticates JWTs as Pulsar's AuthenticationProviderToken
// does: signed with the secret key (HS256, HS384, HS512, as long as the key
// is as long as the hash) or with the public key's algorithm family (RS*,
// PS* for RSA; ES* for the key's curve); "exp" and "nbf" honoured with no
// leeway; the role is the TokenAuthClaim claim (a string, or the first of a
// list of strings).
type TokenProvider struct {
	key      any // []byte, *rsa.PublicKey or *ecdsa.PublicKey
	methods  []string
	claim    string
	audClaim string
	audience string
	now      func() time.Time
}

var _ Provider = (*TokenProvider)(nil)

// NewTokenProvider reads the key the settings name.
func NewTokenProvider(cfg Config) (*TokenProvider, error) {
	p := &TokenProvider{claim: cfg.TokenAuthClaim, audClaim: cfg.TokenAudienceClaim, audience: cfg.TokenAudience, now: cfg.Now}
	if p.claim == "" {
		p.claim = "sub"
	}
	if p.now == nil {
		p.now = time.Now
	}
	if p.audClaim != "" && p.audience == "" {
		return nil, fmt.Errorf("%w: tokenAudienceClaim %q is set but tokenAudience (this broker's audience) is not", ErrConfig, p.audClaim)
	}
	switch {
	case strings.TrimSpace(cfg.TokenSecretKey) != "":
		key, err := ReadKeyURL("tokenSecretKey", strings.TrimSpace(cfg.TokenSecretKey))
		if err != nil {
			return nil, err
		}
		if len(key) < 32 {
			return nil, fmt.Errorf("%w: tokenSecretKey: the key has %d bits; HS256 needs at least 256", ErrConfig, 8*len(key))
		}
		p.key = key
		for _, m := range []struct {
			name string
			n    int
		}{{"HS256", 32}, {"HS384", 48}, {"HS512", 64}} {
			if len(key) >= m.n {
				p.methods = append(p.methods, m.name)
			}
		}
	case strings.TrimSpace(cfg.TokenPublicKey) != "":
		raw, err := ReadKeyURL("tokenPublicKey", strings.TrimSpace(cfg.TokenPublicKey))
		if err != nil {
			return nil, err
		}
		key, err := parsePublicKey(raw)
		if err != nil {
			return nil, fmt.Errorf("%w: tokenPublicKey: %v", ErrConfig, err)
		}
		alg := strings.ToUpper(strings.TrimSpace(cfg.TokenPublicAlg))
		if alg == "" {
			alg = "RS256"
		}
		switch k := key.(type) {
		case *rsa.PublicKey:
			if !strings.HasPrefix(alg, "RS") && !strings.HasPrefix(alg, "PS") {
				return nil, fmt.Errorf("%w: tokenPublicAlg %s does not fit the RSA key of tokenPublicKey", ErrConfig, alg)
			}
			p.methods = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"}
		case *ecdsa.PublicKey:
			if !strings.HasPrefix(alg, "ES") {
				return nil, fmt.Errorf("%w: tokenPublicAlg %s does not fit the EC key of tokenPublicKey (use ES256, ES384 or ES512)", ErrConfig, alg)
			}
			switch k.Curve.Params().BitSize {
			case 256:
				p.methods = []string{"ES256"}
			case 384:
				p.methods = []string{"ES384"}
			case 521:
				p.methods = []string{"ES512"}
			default:
				return nil, fmt.Errorf("%w: tokenPublicKey: unsupported curve %s", ErrConfig, k.Curve.Params().Name)
			}
		default:
			return nil, fmt.Errorf("%w: tokenPublicKey: unsupported key type %T (want RSA or EC)", ErrConfig, key)
		}
		p.key = key
	default:
		return nil, fmt.Errorf("%w: the token provider needs tokenSecretKey or tokenPublicKey", ErrConfig)
	}
	return p, nil
}

// parsePublicKey reads an X.509 SubjectPublicKeyInfo, DER (as Pulsar's
// "pulsar tokens create-key-pair" writes it) or PEM.
func parsePublicKey(raw []byte) (any, error) {
	if blk, _ := pem.Decode(raw); blk != nil {
		raw = blk.Bytes
	}
	key, err := x509.ParsePKIXPublicKey(raw)
	if err != nil {
		if k, err2 := x509.ParsePKCS1PublicKey(raw); err2 == nil {
			return k, nil
		}
		return nil, err
	}
	return key, nil
}

// Method implements Provider.
func (p *TokenProvider) Method() string { return MethodToken }

// AuthenticateBinary checks the token sent as auth_data.
func (p *TokenProvider) AuthenticateBinary(data []byte, _ *tls.ConnectionState) (Result, error) {
	return p.Verify(string(data))
}

// AuthenticateHTTP checks "Authorization: Bearer <token>".
func (p *TokenProvider) AuthenticateHTTP(r *http.Request) (Result, error) {
	h := r.Header.Get("Authorization")
	tok, ok := strings.CutPrefix(h, "Bearer ")
	if !ok {
		return Result{}, authErr(MethodToken, "invalid HTTP Authorization header (want \"Bearer <token>\")")
	}
	return p.Verify(tok)
}

// Verify checks a token's signature, expiry and audience and returns its
// role.
func (p *TokenProvider) Verify(token string) (Result, error) {
	token = strings.TrimSpace(token)
	if token == "" {
		return Result{}, authErr(MethodToken, "blank token")
	}
	if len(token) > maxTokenLen {
		return Result{}, authErr(MethodToken, "token of %d bytes is too long", len(token))
	}
	parser := jwt.NewParser(jwt.WithValidMethods(p.methods), jwt.WithPaddingAllowed(), jwt.WithTimeFunc(p.now))
	claims := jwt.MapClaims{}
	if _, err := parser.ParseWithClaims(token, claims, func(*jwt.Token) (any, error) { return p.key, nil }); err != nil {
		if alg := tokenAlg(token); alg != "" && !slices.Contains(p.methods, alg) {
			return Result{}, authErr(MethodToken, "the token's algorithm %s is not accepted with the configured key (accepted: %s)",
				clip(alg), strings.Join(p.methods, ", "))
		}
		return Result{}, authErr(MethodToken, "%s", tokenError(err))
	}
	if p.audClaim != "" {
		if !hasAudience(claims[p.audClaim], p.audience) {
			return Result{}, authErr(MethodToken, "the token's %s claim does not name this broker (%s)", p.audClaim, p.audience)
		}
	}
	role := ""
	switch v := claims[p.claim].(type) {
	case string:
		role = v
	case []any:
		if len(v) > 0 {
			role, _ = v[0].(string)
		}
	}
	if role == "" {
		return Result{}, authErr(MethodToken, "the token has no %s claim to take the role from", p.claim)
	}
	res := Result{Role: role}
	if exp, err := claims.GetExpirationTime(); err == nil && exp != nil {
		res.Expires = exp.Time
	}
	return res, nil
}

// tokenError phrases a parse failure for the client and the log.
func tokenError(err error) string {
	switch {
	case errors.Is(err, jwt.ErrTokenExpired):
		return "the token has expired"
	case errors.Is(err, jwt.ErrTokenNotValidYet):
		return "the token is not valid yet (nbf)"
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		return "the token's signature does not verify with the configured key"
	case errors.Is(err, jwt.ErrTokenUnverifiable):
		return "the token's algorithm is not accepted with the configured key"
	case errors.Is(err, jwt.ErrTokenMalformed):
		return "malformed token"
	}
	return "invalid token: " + err.Error()
}

// tokenAlg is the alg of a token's header ("" if unreadable).
func tokenAlg(token string) string {
	t, _, err := jwt.NewParser().ParseUnverified(token, jwt.MapClaims{})
	if err != nil || t == nil {
		return ""
	}
	alg, _ := t.Header["alg"].(string)
	return alg
}

func hasAudience(v any, aud string) bool {
	switch a := v.(type) {
	case string:
		return a == aud
	case []any:
		for _, x := range a {
			if s, ok := x.(string); ok && s == aud {
				return true
			}
		}
	}
	return false
}

// NewTokenHS256 makes a token as "pulsar tokens create --secret-key" does:
// HS256 over the claims sub (the role) and, unless expires is zero, exp.
// For tests and development setups.
func NewTokenHS256(secret []byte, subject string, expires time.Time) (string, error) {
	claims := jwt.MapClaims{"sub": subject}
	if !expires.IsZero() {
		claims["exp"] = expires.Unix()
	}
	return jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(secret)
}
