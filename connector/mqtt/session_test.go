package mqtt

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/meshfed/meshfed/internal/testkit"
)

// At QoS 2 a commit sends PUBREC and the session answers the broker's
// PUBREL; a restart delivers again exactly what was not committed.
func TestSourceQoS2RestartLosesNothing(t *testing.T) {
	broker := testkit.Mosquitto(t)
	cfg := testConfig(t, fmt.Sprintf(`{"broker":%q,"topics":["q2/#"],"qos":2}`, broker))
	s := openTestSource(t, cfg)
	dev := publisher(t, broker)
	for i := 0; i < 40; i++ {
		if tok := dev.Publish("q2/x", 2, false, fmt.Sprintf("m-%d", i)); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
			t.Fatalf("publish: %v", tok.Error())
		}
	}
	got := readUntil(t, s, 40)
	commitAndClose(t, s, got[24].Position) // m-0 .. m-24 are durable
	s = openTestSource(t, cfg)
	defer s.Close()
	again := readUntil(t, s, 15)
	for k, r := range again {
		if want := fmt.Sprintf("m-%d", 25+k); string(r.Value) != want {
			t.Fatalf("record %d after the restart is %q, want %q", k, r.Value, want)
		}
	}
}

// Messages arrive in publish order across many Reads, and records of one
// topic share their properties.
func TestSourceKeepsOrder(t *testing.T) {
	broker := testkit.Mosquitto(t)
	cfg := testConfig(t, fmt.Sprintf(`{"broker":%q,"topics":["o/#"],"maxBatch":7}`, broker))
	ctx := context.Background()
	s := openTestSource(t, cfg)
	defer s.Close()
	publish(t, publisher(t, broker), "o/a", 0, 500)
	got := readUntil(t, s, 500)
	for k, r := range got {
		if string(r.Value) != fmt.Sprintf("m-%d", k) || r.Key != "o/a" {
			t.Fatalf("record %d: key %q value %q", k, r.Key, r.Value)
		}
		if err := s.Commit(ctx, r.Position); err != nil {
			t.Fatal(err)
		}
	}
}

// When the connection breaks, Read fails (the agent restarts the
// instance); when the broker stops answering, the keep-alive notices.
func TestSourceReadFailsWhenTheConnectionEnds(t *testing.T) {
	broker := testkit.Mosquitto(t)
	for _, tc := range []struct {
		name string
		cut  func(p *proxy)
		want string
	}{
		{"closed", (*proxy).close, "connection to"},
		{"silent", (*proxy).pause, "no answer from the broker"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := newProxy(t, strings.TrimPrefix(broker, "tcp://"))
			cfg := testConfig(t, fmt.Sprintf(`{"broker":"tcp://%s","topics":["cut/#"],"keepAlive":"1s","clientId":"cut-%s"}`, p.addr, tc.name))
			s := openTestSource(t, cfg)
			defer s.Close()
			tc.cut(p)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_, err := s.Read(ctx)
			if err == nil || ctx.Err() != nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Read after the connection was cut: %v, want an error with %q", err, tc.want)
			}
		})
	}
}

// proxy forwards TCP connections to a broker until the test cuts them.
type proxy struct {
	addr   string
	target string
	ln     net.Listener
	mu     sync.Mutex
	conns  []net.Conn
	paused chan struct{} // closed by pause: forwarding stops
}

func newProxy(t *testing.T, target string) *proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{addr: ln.Addr().String(), target: target, ln: ln, paused: make(chan struct{})}
	t.Cleanup(func() { ln.Close(); p.close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			b, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, b)
			p.mu.Unlock()
			go p.copy(b, c)
			go p.copy(c, b)
		}
	}()
	return p
}

// copy forwards until the connection ends or the proxy is paused.
func (p *proxy) copy(dst, src net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		select {
		case <-p.paused:
			_, _ = io.Copy(io.Discard, src)
			return
		default:
		}
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			dst.Close()
			return
		}
	}
}

func (p *proxy) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
}

// pause drops everything from now on while the connections stay open.
func (p *proxy) pause() {
	select {
	case <-p.paused:
	default:
		close(p.paused)
	}
}

// Over a websocket (ws://) the source reads and commits as over TCP. The
// test bridges websocket connections to mosquitto's TCP listener, as
// mosquitto's own websocket listener needs a build option.
func TestSourceOverWebsocket(t *testing.T) {
	broker := testkit.Mosquitto(t)
	up := websocket.Upgrader{Subprotocols: []string{"mqtt"}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer ws.Close()
		tcp, err := net.Dial("tcp", strings.TrimPrefix(broker, "tcp://"))
		if err != nil {
			return
		}
		defer tcp.Close()
		go func() {
			buf := make([]byte, 32<<10)
			for {
				n, err := tcp.Read(buf)
				if err != nil || ws.WriteMessage(websocket.BinaryMessage, buf[:n]) != nil {
					ws.Close()
					return
				}
			}
		}()
		for {
			_, r, err := ws.NextReader()
			if err != nil {
				return
			}
			if _, err := io.Copy(tcp, r); err != nil {
				return
			}
		}
	}))
	defer srv.Close()
	cfg := testConfig(t, fmt.Sprintf(`{"broker":%q,"topics":["w/#"],"clientId":"ws-source"}`, "ws"+strings.TrimPrefix(srv.URL, "http")))
	s := openTestSource(t, cfg)
	publish(t, publisher(t, broker), "w/x", 0, 50)
	got := readUntil(t, s, 50)
	commitAndClose(t, s, got[29].Position)
	s = openTestSource(t, cfg)
	defer s.Close()
	if again := readUntil(t, s, 20); string(again[0].Value) != "m-30" || string(again[19].Value) != "m-49" {
		t.Fatalf("after the restart: %q .. %q, want m-30 .. m-49", again[0].Value, again[19].Value)
	}
}

// FuzzReadPacket: whatever a broker sends, the reader's decoding returns
// packets or an error, never panics, and a PUBLISH's parts lie within
// its body.
func FuzzReadPacket(f *testing.F) {
	f.Add([]byte{0x32, 0x0a, 0, 3, 'a', '/', 'b', 0, 7, 'h', 'i', '!'}) // QoS 1 PUBLISH
	f.Add([]byte{0x30, 0x05, 0, 1, 't', 'x', 'y', 0xd0, 0x00})          // QoS 0 PUBLISH, PINGRESP
	f.Add([]byte{0x90, 0x03, 0, 1, 0x80})                               // refused SUBACK
	f.Add([]byte{0x30, 0xff, 0xff, 0xff, 0xff, 0x7f})                   // malformed length
	f.Fuzz(func(t *testing.T, data []byte) {
		r := bufio.NewReader(bytes.NewReader(data))
		last := ""
		for {
			h, body, err := readPacket(r)
			if err != nil {
				return
			}
			if h>>4 != 3 {
				continue
			}
			m, err := decodePublish(h, body, last)
			if err != nil {
				continue
			}
			if len(m.topic)+len(m.payload) > len(body) {
				t.Fatalf("topic %q and payload of %d bytes from a body of %d", m.topic, len(m.payload), len(body))
			}
			last = m.topic
		}
	})
}
