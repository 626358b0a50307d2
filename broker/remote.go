package broker

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/url"
	"sync"
	"time"

	"github.com/meshfed/meshfed/broker/wire"
)

// clientVersion is what the broker announces in CONNECT when it is itself a
// client (replicators, the health check).
const clientVersion = "meshfed-broker"

// remoteConn is a producer-side client connection to a broker speaking the
// binary protocol: a remote cluster's broker (replicators) or this
// broker's own listener (the health check). Reads happen on one goroutine
// at a time; writes may come from any goroutine.
type remoteConn struct {
	nc       net.Conn
	r        *bufio.Reader
	maxFrame int
	local    string // local address of the connection
	// auth answers AUTH_CHALLENGE (nil = no credentials). Never changed
	// after dialBroker.
	auth clientAuth
	// writeTimeout bounds each write (0 = none).
	writeTimeout time.Duration

	wmu sync.Mutex
	w   *bufio.Writer // guarded by wmu
}

// remoteError is an ERROR or SEND_ERROR answer of the peer.
type remoteError struct {
	code wire.ServerError
	msg  string
}

func (e *remoteError) Error() string { return fmt.Sprintf("broker error %d: %s", e.code, e.msg) }

// clientAuth is a way the broker authenticates when it is itself a client
// (Pulsar's client authentication plugins): the method name and data sent
// in CONNECT and again in answer to AUTH_CHALLENGE.
type clientAuth interface {
	authMethod() string
	authData() ([]byte, error)
}

// dialOptions say how dialBroker connects.
type dialOptions struct {
	// tls is the client configuration for pulsar+ssl:// URLs (nil = verify
	// the server against the system's CA pool).
	tls *tls.Config
	// auth gives the credentials (nil = none).
	auth clientAuth
}

// brokerAddr turns a pulsar:// or pulsar+ssl:// service URL into host:port
// and whether it needs TLS.
func brokerAddr(serviceURL string) (addr string, secure bool, err error) {
	u, err := url.Parse(serviceURL)
	if err != nil {
		return "", false, fmt.Errorf("broker service url %q: %w", serviceURL, err)
	}
	port := "6650"
	switch u.Scheme {
	case "pulsar":
	case "pulsar+ssl":
		secure, port = true, "6651"
	default:
		return "", false, fmt.Errorf("broker service url %q: scheme must be pulsar:// or pulsar+ssl://", serviceURL)
	}
	if u.Hostname() == "" {
		return "", false, fmt.Errorf("broker service url %q: no host", serviceURL)
	}
	host := u.Host
	if u.Port() == "" {
		host = net.JoinHostPort(u.Hostname(), port)
	}
	return host, secure, nil
}

// dialBroker connects to serviceURL and completes CONNECT/CONNECTED
// within ctx's deadline.
func dialBroker(ctx context.Context, serviceURL string, opts dialOptions) (*remoteConn, error) {
	addr, secure, err := brokerAddr(serviceURL)
	if err != nil {
		return nil, err
	}
	var d net.Dialer
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", addr, err)
	}
	if secure {
		cfg := opts.tls
		if cfg == nil {
			cfg = &tls.Config{MinVersion: tls.VersionTLS12}
		}
		if cfg.ServerName == "" && !cfg.InsecureSkipVerify {
			cfg = cfg.Clone()
			cfg.ServerName, _, _ = net.SplitHostPort(addr)
		}
		tc := tls.Client(nc, cfg)
		if err := tc.HandshakeContext(ctx); err != nil {
			nc.Close()
			return nil, fmt.Errorf("tls handshake with %s: %w", addr, err)
		}
		nc = tc
	}
	c := &remoteConn{nc: nc, r: bufio.NewReaderSize(nc, 64<<10), w: bufio.NewWriterSize(nc, 256<<10),
		maxFrame: 6 << 20, local: nc.LocalAddr().String(), auth: opts.auth}
	if dl, ok := ctx.Deadline(); ok {
		_ = nc.SetDeadline(dl)
	}
	connect := wire.ConnectCmd(clientVersion, maxProtocolVersion)
	if opts.auth != nil {
		data, err := opts.auth.authData()
		if err != nil {
			c.close()
			return nil, fmt.Errorf("connect to %s: credentials: %w", addr, err)
		}
		connect = wire.ConnectAuthCmd(clientVersion, maxProtocolVersion, opts.auth.authMethod(), data)
	}
	if err := c.write(wire.AppendFrame(nil, connect)); err != nil {
		c.close()
		return nil, fmt.Errorf("connect to %s: %w", addr, err)
	}
	resp, err := c.read()
	if err != nil {
		c.close()
		return nil, fmt.Errorf("connect to %s: %w", addr, err)
	}
	switch {
	case resp.Error != nil:
		c.close()
		return nil, fmt.Errorf("connect to %s: %w", addr, &remoteError{resp.Error.Code, resp.Error.Message})
	case resp.Connected == nil:
		c.close()
		return nil, fmt.Errorf("connect to %s: unexpected answer (command %d) to CONNECT", addr, resp.Type)
	}
	_ = nc.SetDeadline(time.Time{})
	return c, nil
}

// write sends complete frames and flushes them.
func (c *remoteConn) write(frames ...[]byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.writeTimeout > 0 {
		_ = c.nc.SetWriteDeadline(time.Now().Add(c.writeTimeout))
	}
	for _, f := range frames {
		if _, err := c.w.Write(f); err != nil {
			return err
		}
	}
	return c.w.Flush()
}

// read returns the next response, answering PINGs and AUTH_CHALLENGEs on
// the way.
func (c *remoteConn) read() (*wire.Response, error) {
	for {
		resp, err := wire.ReadResponse(c.r, c.maxFrame)
		if err != nil {
			return nil, err
		}
		switch resp.Type {
		case wire.TypePing:
			if err := c.write(wire.AppendFrame(nil, wire.Pong())); err != nil {
				return nil, err
			}
			continue
		case wire.TypeAuthChallenge:
			if c.auth == nil {
				return nil, errors.New("the broker asks for credentials (AUTH_CHALLENGE) but none are configured")
			}
			data, err := c.auth.authData()
			if err != nil {
				return nil, fmt.Errorf("refresh credentials: %w", err)
			}
			if err := c.write(wire.AppendFrame(nil, wire.AuthResponseCmd(clientVersion, maxProtocolVersion, c.auth.authMethod(), data))); err != nil {
				return nil, err
			}
			continue
		}
		return resp, nil
	}
}

// createProducer registers a producer and waits for it to be ready.
func (c *remoteConn) createProducer(ctx context.Context, topic, name string, producerID, requestID uint64) (*wire.ProducerSuccessResp, error) {
	if dl, ok := ctx.Deadline(); ok {
		_ = c.nc.SetReadDeadline(dl)
		defer c.nc.SetReadDeadline(time.Time{})
	}
	if err := c.write(wire.AppendFrame(nil, wire.ProducerCmd(topic, producerID, requestID, name))); err != nil {
		return nil, fmt.Errorf("create producer on %s: %w", topic, err)
	}
	for {
		resp, err := c.read()
		if err != nil {
			return nil, fmt.Errorf("create producer on %s: %w", topic, err)
		}
		switch {
		case resp.Error != nil && resp.Error.RequestID == requestID:
			return nil, fmt.Errorf("create producer on %s: %w", topic, &remoteError{resp.Error.Code, resp.Error.Message})
		case resp.ProducerSuccess != nil && resp.ProducerSuccess.RequestID == requestID && resp.ProducerSuccess.Ready:
			return resp.ProducerSuccess, nil
		}
	}
}

func (c *remoteConn) close() { c.nc.Close() }

// isRemoteCode reports whether err is an answer of the peer with code.
func isRemoteCode(err error, code wire.ServerError) bool {
	var re *remoteError
	return errors.As(err, &re) && re.code == code
}
