package mqtt

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/eclipse/paho.mqtt.golang/packets"
)

// session is the source's MQTT 3.1.1 connection: a persistent session
// (clean session off) read by one goroutine through a buffer, so a burst
// of PUBLISH packets costs a few system calls rather than several per
// message, and acknowledged a run at a time: Ack writes the PUBACKs of a
// whole commit in one write. paho's client (which the sink uses) hands
// every message and every acknowledgement across goroutines one at a time
// and reads each packet with several system calls; on a busy machine that
// per-message cost, not the broker or the network, bounded the source.
type session struct {
	conn      net.Conn
	r         *bufio.Reader
	keepAlive time.Duration
	barrier   string // the filter Close unsubscribes from as a round trip

	// wmu guards writes to conn.
	wmu sync.Mutex

	// mu guards queue, err and closing.
	mu sync.Mutex
	// queue holds the messages received and not yet taken by take, in
	// arrival order.
	queue []inbound
	// err is why reading stopped; nil while it goes on.
	err error
	// closing is set by close: a read error after it is expected.
	closing bool

	ready  chan struct{} // one token: queue grew or err was set
	space  chan struct{} // one token: take made room in a full queue
	acks   chan uint16   // packet ids of SUBACKs and UNSUBACKs, in order
	subErr chan error    // a refused subscription, from the reader
	done   chan struct{} // closed when the reader ends
	quit   chan struct{} // closed by close: the reader stops waiting for room

	// heard is set by the reader whenever a packet arrives; the keep-alive
	// loop clears it and closes a connection that stays silent across a
	// ping.
	heard atomic.Bool
	// stalled is set while the reader waits for room in a full queue: not
	// reading, it cannot hear the broker, which is then not silent.
	stalled atomic.Bool
}

// inbound is a PUBLISH received.
type inbound struct {
	topic   string
	payload []byte
	id      uint16 // the packet id; 0 at QoS 0
	qos     byte
}

// queueLimit bounds the messages received ahead of take. At QoS 1 and 2 the
// broker sends at most its in-flight window of unacknowledged messages, so
// the queue stays below it; at QoS 0 the reader stops reading here and TCP
// holds the broker back.
const queueLimit = 1 << 16

// Packet ids of the session's own requests: one subscription at
// connection, one barrier at close, never both outstanding.
const (
	subscribeID   = 1
	unsubscribeID = 2
)

// errClosed is the reader's error after close.
var errClosed = errors.New("session closed")

// dialSession connects as clientID with a persistent session and
// subscribes to filters at qos; messages are read from then on.
func dialSession(ctx context.Context, c common, clientID string, filters []string, qos byte) (*session, error) {
	conn, err := dial(ctx, c)
	if err != nil {
		return nil, err
	}
	s := &session{conn: conn, r: bufio.NewReaderSize(conn, 64<<10), keepAlive: c.keepAlive,
		barrier: "meshfed/close-barrier/" + clientID,
		ready:   make(chan struct{}, 1), space: make(chan struct{}, 1), acks: make(chan uint16, 2),
		subErr: make(chan error, 1), done: make(chan struct{}), quit: make(chan struct{})}
	fail := func(err error) (*session, error) {
		conn.Close()
		return nil, err
	}
	_ = conn.SetDeadline(time.Now().Add(c.connectTimeout))
	cp := packets.NewControlPacket(packets.Connect).(*packets.ConnectPacket)
	cp.ProtocolName, cp.ProtocolVersion = "MQTT", 4
	cp.ClientIdentifier, cp.CleanSession = clientID, false
	cp.Keepalive = uint16(min(c.keepAlive/time.Second, 65535))
	if c.username != "" {
		cp.UsernameFlag, cp.Username = true, c.username
		cp.PasswordFlag, cp.Password = c.password != "", []byte(c.password)
	}
	if err := cp.Write(conn); err != nil {
		return fail(fmt.Errorf("send CONNECT: %w", err))
	}
	h, body, err := readPacket(s.r)
	switch {
	case err != nil:
		return fail(fmt.Errorf("read CONNACK: %w", err))
	case h>>4 != packets.Connack || len(body) != 2:
		return fail(fmt.Errorf("got packet type %d, not CONNACK", h>>4))
	case body[1] != packets.Accepted:
		return fail(fmt.Errorf("connection refused: %s", packets.ConnackReturnCodes[body[1]]))
	}
	// A resumed session may deliver before the SUBACK: read from now on.
	go s.read()
	sp := packets.NewControlPacket(packets.Subscribe).(*packets.SubscribePacket)
	sp.MessageID, sp.Topics = subscribeID, filters
	for range filters {
		sp.Qoss = append(sp.Qoss, qos)
	}
	failRead := func(err error) (*session, error) {
		s.close(0) // and wait for the reader
		return nil, err
	}
	if err := s.write(sp.Write); err != nil {
		return failRead(fmt.Errorf("send SUBSCRIBE: %w", err))
	}
	timer := time.NewTimer(c.connectTimeout)
	defer timer.Stop()
	select {
	case <-s.acks:
	case err := <-s.subErr:
		return failRead(err)
	case <-s.done:
		return failRead(fmt.Errorf("wait for SUBACK: %w", s.readErr()))
	case <-ctx.Done():
		return failRead(ctx.Err())
	case <-timer.C:
		return failRead(errors.New("wait for SUBACK: timed out"))
	}
	_ = conn.SetDeadline(time.Time{})
	if c.keepAlive > 0 {
		go s.keepAlives()
	}
	return s, nil
}

// dial opens the connection the broker URL names: TCP, TLS or a websocket.
func dial(ctx context.Context, c common) (net.Conn, error) {
	u, err := url.Parse(c.broker)
	if err != nil {
		return nil, err
	}
	host := u.Host
	withPort := func(port string) string {
		if u.Port() == "" {
			return net.JoinHostPort(u.Hostname(), port)
		}
		return host
	}
	d := &net.Dialer{Timeout: c.connectTimeout}
	switch u.Scheme {
	case "tcp", "mqtt":
		return d.DialContext(ctx, "tcp", withPort("1883"))
	case "ssl", "tls", "mqtts":
		td := &tls.Dialer{NetDialer: d, Config: &tls.Config{ServerName: u.Hostname()}}
		return td.DialContext(ctx, "tcp", withPort("8883"))
	case "ws", "wss":
		return paho.NewWebsocket(c.broker, &tls.Config{ServerName: u.Hostname()}, c.connectTimeout, nil, nil)
	}
	return nil, fmt.Errorf("scheme %q is not tcp, mqtt, ssl, tls, mqtts, ws or wss", u.Scheme)
}

// readPacket reads one packet: its first header byte and its body.
func readPacket(r *bufio.Reader) (byte, []byte, error) {
	h, err := r.ReadByte()
	if err != nil {
		return 0, nil, err
	}
	n, shift := 0, 0
	for {
		b, err := r.ReadByte()
		if err != nil {
			return 0, nil, err
		}
		n |= int(b&0x7f) << shift
		if b&0x80 == 0 {
			break
		}
		if shift += 7; shift > 21 {
			return 0, nil, errors.New("malformed remaining length")
		}
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(r, body); err != nil {
		return 0, nil, err
	}
	return h, body, nil
}

// read is the reader goroutine: it queues PUBLISH packets, answers PUBREL,
// and passes on SUBACKs and UNSUBACKs, until the connection ends.
func (s *session) read() {
	defer close(s.done)
	var topic string // the last topic, so a run of one topic shares its string
	for {
		h, body, err := readPacket(s.r)
		if err == nil {
			s.heard.Store(true)
			switch h >> 4 {
			case packets.Publish:
				var m inbound
				if m, err = decodePublish(h, body, topic); err == nil {
					topic = m.topic
					if !s.push(m) {
						err = errClosed
					}
				}
			case packets.Pubrel: // QoS 2, after our PUBREC
				if len(body) != 2 {
					err = errors.New("malformed PUBREL")
				} else {
					err = s.write(func(w io.Writer) error {
						_, err := w.Write([]byte{packets.Pubcomp << 4, 2, body[0], body[1]})
						return err
					})
				}
			case packets.Suback:
				err = s.subacked(body)
			case packets.Unsuback:
				if len(body) == 2 {
					s.passAck(binary.BigEndian.Uint16(body))
				}
			case packets.Pingresp:
			default:
				err = fmt.Errorf("unexpected packet type %d", h>>4)
			}
		}
		if err != nil {
			s.mu.Lock()
			switch {
			case s.err != nil: // the keep-alive's reason for closing
			case s.closing:
				s.err = errClosed
			default:
				s.err = err
			}
			s.mu.Unlock()
			s.signal(s.ready)
			return
		}
	}
}

// decodePublish decodes a PUBLISH body; last is reused as the topic when
// it is the same.
func decodePublish(h byte, body []byte, last string) (inbound, error) {
	m := inbound{qos: h >> 1 & 3}
	if len(body) < 2 {
		return m, errors.New("malformed PUBLISH")
	}
	n := int(binary.BigEndian.Uint16(body))
	rest := body[2:]
	if len(rest) < n {
		return m, errors.New("malformed PUBLISH topic")
	}
	if t := rest[:n]; string(t) == last {
		m.topic = last
	} else {
		m.topic = string(t)
	}
	rest = rest[n:]
	if m.qos > 0 {
		if len(rest) < 2 {
			return m, errors.New("malformed PUBLISH packet id")
		}
		m.id = binary.BigEndian.Uint16(rest)
		rest = rest[2:]
	}
	m.payload = rest
	return m, nil
}

// subacked checks the SUBACK of the subscription: 0x80 is a refused filter.
func (s *session) subacked(body []byte) error {
	if len(body) < 2 {
		return errors.New("malformed SUBACK")
	}
	for i, code := range body[2:] {
		if code == 0x80 {
			select {
			case s.subErr <- fmt.Errorf("subscription %d of %d refused by the broker", i+1, len(body)-2):
			default:
			}
			return nil
		}
	}
	s.passAck(binary.BigEndian.Uint16(body))
	return nil
}

// passAck hands the packet id of a SUBACK or UNSUBACK to whoever waits
// for it; one nobody waits for (a broker's stray answer) is dropped.
func (s *session) passAck(id uint16) {
	select {
	case s.acks <- id:
	default:
	}
}

// push queues m, waiting while the queue is full; false: the session
// was closed meanwhile.
func (s *session) push(m inbound) bool {
	for {
		s.mu.Lock()
		if len(s.queue) < queueLimit {
			s.queue = append(s.queue, m)
			wake := len(s.queue) == 1
			s.mu.Unlock()
			if wake {
				s.signal(s.ready)
			}
			return true
		}
		s.mu.Unlock()
		s.stalled.Store(true)
		select {
		case <-s.space:
		case <-s.quit:
			return false
		}
		s.stalled.Store(false)
	}
}

func (s *session) signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// take waits for messages and returns up to max of them, in order; after
// the connection ended it returns why.
func (s *session) take(ctx context.Context, max int) ([]inbound, error) {
	for {
		s.mu.Lock()
		if n := min(len(s.queue), max); n > 0 {
			out := s.queue[:n:n]
			s.queue = s.queue[n:]
			if len(s.queue) == 0 {
				s.queue = nil
			}
			s.mu.Unlock()
			s.signal(s.space)
			return out, nil
		}
		err := s.err
		s.mu.Unlock()
		if err != nil {
			return nil, err
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-s.ready:
		}
	}
}

func (s *session) readErr() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// ack acknowledges msgs in one write: PUBACK at QoS 1, PUBREC at QoS 2
// (the broker's PUBREL is answered by the reader), nothing at QoS 0.
func (s *session) ack(msgs []inbound) error {
	buf := make([]byte, 0, 4*len(msgs))
	for _, m := range msgs {
		switch m.qos {
		case 1:
			buf = append(buf, packets.Puback<<4, 2, byte(m.id>>8), byte(m.id))
		case 2:
			buf = append(buf, packets.Pubrec<<4, 2, byte(m.id>>8), byte(m.id))
		}
	}
	if len(buf) == 0 {
		return nil
	}
	return s.write(func(w io.Writer) error {
		_, err := w.Write(buf)
		return err
	})
}

func (s *session) write(f func(io.Writer) error) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	return f(s.conn)
}

// keepAlives sends a PINGREQ every half keep-alive period and closes the
// connection when nothing at all arrived across one, so a dead broker
// ends Read with an error instead of blocking it.
func (s *session) keepAlives() {
	t := time.NewTicker(s.keepAlive / 2)
	defer t.Stop()
	pinged := false
	for {
		select {
		case <-s.done:
			return
		case <-t.C:
		}
		if pinged && !s.heard.Swap(false) && !s.stalled.Load() {
			s.mu.Lock()
			if s.err == nil && !s.closing {
				s.err = fmt.Errorf("no answer from the broker within %s", s.keepAlive/2)
			}
			s.mu.Unlock()
			s.conn.Close()
			return
		}
		s.heard.Store(false)
		if err := s.write(func(w io.Writer) error {
			_, err := w.Write([]byte{packets.Pingreq << 4, 0})
			return err
		}); err != nil {
			return // the reader sees the broken connection too
		}
		pinged = true
	}
}

// close ends the session without acknowledging what was not acknowledged:
// the broker delivers it again to the next session of this client id.
// With a quiesce period it first waits up to that long for the answer to
// an UNSUBSCRIBE of a filter the session does not hold: the broker handles
// a connection's packets in order, so that answer means it has taken every
// acknowledgement written before; then it sends DISCONNECT.
func (s *session) close(quiesce time.Duration) {
	s.mu.Lock()
	s.closing = true
	s.mu.Unlock()
	close(s.quit)
	if quiesce > 0 {
		up := packets.NewControlPacket(packets.Unsubscribe).(*packets.UnsubscribePacket)
		up.MessageID, up.Topics = unsubscribeID, []string{s.barrier}
		if s.write(up.Write) == nil {
			timer := time.NewTimer(quiesce)
		wait:
			for {
				select {
				case id := <-s.acks:
					if id == unsubscribeID {
						break wait
					}
				case <-s.done:
					break wait
				case <-timer.C:
					break wait
				}
			}
			timer.Stop()
		}
		_ = s.write(func(w io.Writer) error {
			_, err := w.Write([]byte{packets.Disconnect << 4, 0})
			return err
		})
	}
	s.conn.Close()
	<-s.done
}
