package auth

import (
	"encoding/base64"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
)

// ReadKeyURL reads key material as Pulsar's tokenSecretKey, tokenPublicKey
// and basicAuthConf settings name it: a "data:" URL (RFC 2397, base64 or
// percent-encoded), a "file:" URL, a path to an existing file, or the
// content itself in base64. setting names the setting in errors.
func ReadKeyURL(setting, v string) ([]byte, error) {
	switch {
	case v == "":
		return nil, fmt.Errorf("%w: %s is empty", ErrConfig, setting)
	case strings.HasPrefix(v, "data:"):
		b, err := decodeDataURL(v)
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %v", ErrConfig, setting, err)
		}
		return b, nil
	case strings.HasPrefix(v, "file:"):
		u, err := url.Parse(v)
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %v", ErrConfig, setting, err)
		}
		p := u.Path
		if p == "" {
			p = u.Opaque
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %v", ErrConfig, setting, err)
		}
		return b, nil
	}
	if st, err := os.Stat(v); err == nil && st.Mode().IsRegular() {
		b, err := os.ReadFile(v)
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %v", ErrConfig, setting, err)
		}
		return b, nil
	}
	if b, err := base64.StdEncoding.DecodeString(v); err == nil {
		return b, nil
	}
	shown := "(value not shown)"
	if strings.ContainsAny(v, "/\\") {
		shown = fmt.Sprintf("%q", clip(v)) // a path, probably mistyped
	}
	return nil, fmt.Errorf("%w: %s: %s is neither a data: or file: URL, an existing file, nor base64", ErrConfig, setting, shown)
}

// decodeDataURL decodes "data:[<media type>][;base64],<data>".
func decodeDataURL(v string) ([]byte, error) {
	head, data, ok := strings.Cut(strings.TrimPrefix(v, "data:"), ",")
	if !ok {
		return nil, errors.New("data: URL without ','")
	}
	if strings.HasSuffix(head, ";base64") {
		b, err := base64.StdEncoding.DecodeString(data)
		if err != nil {
			return nil, fmt.Errorf("data: URL: %w", err)
		}
		return b, nil
	}
	s, err := url.PathUnescape(data)
	if err != nil {
		return nil, fmt.Errorf("data: URL: %w", err)
	}
	return []byte(s), nil
}

// clip shortens what an error quotes of outside input.
func clip(s string) string {
	if len(s) > 40 {
		return s[:40] + "..."
	}
	return s
}
