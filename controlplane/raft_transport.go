package controlplane

import (
	"crypto/tls"
	"fmt"
	"net"
	"time"

	"github.com/hashicorp/raft"
)

// hostPort is an address kept as written: a DNS name stays a name. It is
// what this server advertises to Raft, so the configuration stores the name
// and every peer resolves it when it dials, reaching a server that came back
// at a new IP (a rescheduled pod) under its old name.
type hostPort string

func (a hostPort) Network() string { return "tcp" }
func (a hostPort) String() string  { return string(a) }

// raftStream carries Raft over TCP, or over mutual TLS between server
// certificates when tls is set. hashicorp/raft's own TCP transport cannot
// advertise a name (it wants a *net.TCPAddr).
type raftStream struct {
	net.Listener
	// advertise is what peers are told to dial (Addr); never empty.
	advertise hostPort
	// tls dials peers with the server certificate; nil: plaintext.
	tls *tls.Config
}

var _ raft.StreamLayer = (*raftStream)(nil)

// newRaftStream wraps a bound listener. With listenTLS and dialTLS set,
// both directions are mutual TLS.
func newRaftStream(lis net.Listener, advertise hostPort, listenTLS, dialTLS *tls.Config) *raftStream {
	if listenTLS != nil {
		lis = tls.NewListener(lis, listenTLS)
	}
	return &raftStream{Listener: lis, advertise: advertise, tls: dialTLS}
}

// Dial resolves address (a name or an IP, with its port) now and connects.
// Under TLS the peer's certificate must be valid for the host as written:
// a name is checked against the certificate's DNS names, an IP against its
// IP addresses.
func (l *raftStream) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	d := &net.Dialer{Timeout: timeout}
	if l.tls == nil {
		return d.Dial("tcp", string(address))
	}
	host, _, err := net.SplitHostPort(string(address))
	if err != nil {
		return nil, fmt.Errorf("raft peer address %q: %w", address, err)
	}
	cfg := l.tls.Clone()
	cfg.ServerName = host
	return tls.DialWithDialer(d, "tcp", string(address), cfg)
}

// Addr is the advertised address, not the bound one.
func (l *raftStream) Addr() net.Addr { return l.advertise }
