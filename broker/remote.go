package broker

import (
	"bufio"
	"context"
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

// brokerAddr turns a pulsar:// service URL into host:port.
func brokerAddr(serviceURL string) (string, error) {
	u, err := url.Parse(serviceURL)
	if err != nil {
		return "", fmt.Errorf("broker service url %q: %w", serviceURL, err)
	}
	switch u.Scheme {
	case "pulsar":
	case "pulsar+ssl":
		return "", fmt.Errorf("broker service url %q: TLS (pulsar+ssl) is not supported for replication", serviceURL)
	default:
		return "", fmt.Errorf("broker service url %q: scheme must be pulsar://", serviceURL)
	}
	host := u.Host
	if u.Port() == "" {
		host = net.JoinHostPort(u.Hostname(), "6650")
	}
	if u.Hostname() == "" {
		return "", fmt.Errorf("broker service url %q: no host", serviceURL)
	}
	return host, nil
}

// dialBroker connects to serviceURL and completes CONNECT/CONNECTED
// within ctx's deadline.
func dialBroker(ctx context.Context, serviceURL string) (*remoteConn, error) {
	addr, err := brokerAddr(serviceURL)
	if err != nil {
		return nil, err
	}
	var d net.Dialer
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", addr, err)
	}
	c := &remoteConn{nc: nc, r: bufio.NewReaderSize(nc, 64<<10), w: bufio.NewWriterSize(nc, 256<<10),
		maxFrame: 6 << 20, local: nc.LocalAddr().String()}
	if dl, ok := ctx.Deadline(); ok {
		_ = nc.SetDeadline(dl)
	}
	if err := c.write(wire.AppendFrame(nil, wire.ConnectCmd(clientVersion, maxProtocolVersion))); err != nil {
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

// read returns the next response, answering PINGs on the way.
func (c *remoteConn) read() (*wire.Response, error) {
	for {
		resp, err := wire.ReadResponse(c.r, c.maxFrame)
		if err != nil {
			return nil, err
		}
		if resp.Type == wire.TypePing {
			if err := c.write(wire.AppendFrame(nil, wire.Pong())); err != nil {
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
