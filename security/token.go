package security

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	meshfedv1 "github.com/meshfed/meshfed/gen/meshfed/v1"
	"google.golang.org/protobuf/proto"
)

// A token secret reads "mft1." + base64url(claims) + "." + base64url(signature):
// the claims are a TokenClaims protobuf, the signature is Ed25519 over the
// first two parts (prefix and claims, with their dot).
const tokenPrefix = "mft1."

// MaxTokenLen bounds a token secret; longer input is refused unread.
const MaxTokenLen = 4096

// Token errors. Every error ParseToken returns matches one of them.
var (
	ErrTokenMalformed = errors.New("malformed token")
	ErrTokenSignature = errors.New("token signature does not verify")
	ErrTokenExpired   = errors.New("token expired")
	// ErrTokenUnknownKey matches ErrTokenSignature: the key id is unknown.
	ErrTokenUnknownKey = fmt.Errorf("%w: signed by an unknown key", ErrTokenSignature)
)

// NewSigningKey returns a fresh Ed25519 key and a random key id.
func NewSigningKey() (id string, key ed25519.PrivateKey, err error) {
	_, key, err = ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return "", nil, fmt.Errorf("generate signing key: %w", err)
	}
	return RandomID(8), key, nil
}

// RandomID returns n random bytes in hex.
func RandomID(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (it crashes the program instead)
	return hex.EncodeToString(b)
}

// SignToken encodes and signs claims with key, recording keyID in them.
func SignToken(keyID string, key ed25519.PrivateKey, c *meshfedv1.TokenClaims) (string, error) {
	if len(key) != ed25519.PrivateKeySize {
		return "", fmt.Errorf("signing key %s has %d bytes, want %d", keyID, len(key), ed25519.PrivateKeySize)
	}
	c = proto.CloneOf(c)
	c.KeyId = keyID
	body, err := proto.MarshalOptions{Deterministic: true}.Marshal(c)
	if err != nil {
		return "", fmt.Errorf("encode token claims: %w", err)
	}
	signed := tokenPrefix + base64.RawURLEncoding.EncodeToString(body)
	sig := ed25519.Sign(key, []byte(signed))
	return signed + "." + base64.RawURLEncoding.EncodeToString(sig), nil
}

// ParseToken verifies a token secret and returns its claims. publicKey
// returns the public key of a key id, and false for an unknown one. A token
// whose expiry is at or before now is refused with ErrTokenExpired (after the
// signature verified). Revocation is the caller's business: it needs the
// token records.
func ParseToken(secret string, now time.Time, publicKey func(keyID string) (ed25519.PublicKey, bool)) (*meshfedv1.TokenClaims, error) {
	bad := func(why string) error { return fmt.Errorf("%w: %s", ErrTokenMalformed, why) }
	if len(secret) > MaxTokenLen {
		return nil, bad(fmt.Sprintf("%d bytes, at most %d", len(secret), MaxTokenLen))
	}
	if !strings.HasPrefix(secret, tokenPrefix) {
		return nil, bad(`does not start with "mft1." (pass the secret printed by meshfed token create)`)
	}
	dot := strings.LastIndexByte(secret, '.')
	if dot < len(tokenPrefix) {
		return nil, bad("no signature part")
	}
	signed, sigPart := secret[:dot], secret[dot+1:]
	body, err := base64.RawURLEncoding.DecodeString(signed[len(tokenPrefix):])
	if err != nil {
		return nil, bad("claims are not base64url")
	}
	sig, err := base64.RawURLEncoding.DecodeString(sigPart)
	if err != nil || len(sig) != ed25519.SignatureSize {
		return nil, bad("signature is not a base64url Ed25519 signature")
	}
	var c meshfedv1.TokenClaims
	if err := proto.Unmarshal(body, &c); err != nil {
		return nil, bad("claims do not decode")
	}
	if c.GetId() == "" || c.GetKeyId() == "" {
		return nil, bad("claims lack an id or key id")
	}
	pub, ok := publicKey(c.GetKeyId())
	if !ok {
		return nil, fmt.Errorf("%w %q", ErrTokenUnknownKey, clip(c.GetKeyId()))
	}
	if !ed25519.Verify(pub, []byte(signed), sig) {
		return nil, ErrTokenSignature
	}
	if exp := c.GetExpiresAt(); exp != 0 && !now.Before(time.Unix(exp, 0)) {
		return nil, fmt.Errorf("%w at %s", ErrTokenExpired, time.Unix(exp, 0).UTC().Format(time.RFC3339))
	}
	return &c, nil
}

func clip(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}

// BearerToken presents a token secret on every call. It requires a secure
// transport, so a token never crosses the network in clear.
type BearerToken string

// GetRequestMetadata implements credentials.PerRPCCredentials.
func (t BearerToken) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + string(t)}, nil
}

// RequireTransportSecurity implements credentials.PerRPCCredentials.
func (BearerToken) RequireTransportSecurity() bool { return true }
