package httpconn

import (
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/meshfed/meshfed/connector"
)

// Sink modes: one request per record, or one JSON array per batch.
const (
	modeRecord = "record"
	modeBatch  = "batch"
)

type sourceConfig struct {
	listen   string
	path     string
	token    string
	maxBody  int
	timeout  time.Duration
	maxBatch int
}

type sinkConfig struct {
	url     string
	method  string
	headers map[string]string
	token   string
	mode    string
	timeout time.Duration
	retries int
	backoff time.Duration
}

func decodeSource(values map[string]any) (sourceConfig, error) {
	v := connector.NewValues(values)
	c := sourceConfig{
		listen:   v.String("listen", ""),
		path:     v.String("path", "/"),
		token:    v.String("token", ""),
		maxBody:  v.Int("maxBodyBytes", 1<<20, 1, 64<<20),
		timeout:  v.Duration("timeout", 30*time.Second),
		maxBatch: v.Int("maxBatch", 1000, 1, 100000),
	}
	if c.listen == "" {
		v.Fail("listen", "required: the address the webhook listens on, such as :8090")
	} else if _, _, err := net.SplitHostPort(c.listen); err != nil {
		v.Fail("listen", "%q is not host:port (%v)", c.listen, err)
	}
	if !strings.HasPrefix(c.path, "/") {
		v.Fail("path", "%q must start with /", c.path)
	}
	if c.token == "" {
		v.Fail("token", "required: the bearer token callers present, as {secret: {env: NAME}} or {secret: {file: /path}}")
	}
	return c, v.Err()
}

func decodeSink(values map[string]any) (sinkConfig, error) {
	v := connector.NewValues(values)
	c := sinkConfig{
		url:     v.String("url", ""),
		method:  strings.ToUpper(v.String("method", "POST")),
		headers: v.StringMap("headers"),
		token:   v.String("token", ""),
		mode:    v.String("mode", modeBatch),
		timeout: v.Duration("timeout", 10*time.Second),
		retries: v.Int("retries", 5, 0, 100),
		backoff: v.Duration("backoff", 200*time.Millisecond),
	}
	switch u, err := url.Parse(c.url); {
	case c.url == "":
		v.Fail("url", "required: the URL records are sent to")
	case err != nil || u.Host == "" || u.Scheme != "http" && u.Scheme != "https":
		v.Fail("url", "%q is not an http:// or https:// URL", c.url)
	}
	if c.method != "POST" && c.method != "PUT" {
		v.Fail("method", "%q is not POST or PUT", c.method)
	}
	if c.mode != modeRecord && c.mode != modeBatch {
		v.Fail("mode", "%q is not record or batch", c.mode)
	}
	for k, val := range c.headers {
		switch {
		case k == "" || strings.ContainsAny(k, " :\r\n"):
			v.Fail("headers."+k, "%q is not a header name", k)
		case strings.ContainsAny(val, "\r\n"):
			v.Fail("headers."+k, "a header value holds no line break")
		}
	}
	return c, v.Err()
}
