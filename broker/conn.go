package broker

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"math"
	"net"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/meshfed/meshfed/broker/wire"
)

const (
	serverVersion      = "meshfed-broker"
	maxProtocolVersion = 20
	// idleTimeout closes connections that send nothing (clients ping every
	// 30 s by default).
	idleTimeout = 2 * time.Minute
	// tlsHandshakeTimeout bounds a TLS client's handshake.
	tlsHandshakeTimeout = 10 * time.Second
)

// conn is one client connection. The reader goroutine (serve) handles
// commands in order; responses and messages go through an unbounded write
// queue drained by the writer goroutine, so dispatch never blocks on a slow
// socket.
type conn struct {
	b      *Broker
	nc     net.Conn
	remote string
	// clientVersion is CONNECT's client_version; set before any other
	// command is handled and never changed.
	clientVersion string
	// tlsState is the TLS session of a pulsar+ssl:// connection (nil for
	// plaintext); set by serve before the first command.
	tlsState *tls.ConnectionState

	wmu     sync.Mutex
	wq      [][]byte // guarded by wmu
	wclosed bool     // guarded by wmu
	// closing makes the writer close the connection once the queue is
	// flushed (false = keep going); guarded by wmu.
	closing bool
	wsig    chan struct{}
	done    chan struct{}
	once    sync.Once

	mu        sync.Mutex
	producers map[uint64]*producer // guarded by mu
	consumers map[uint64]*consumer // guarded by mu

	// amu guards the authentication state below, set at CONNECT and by
	// credential refreshes.
	amu sync.Mutex
	// authRole is the authenticated role ("" = authentication off).
	authRole string
	// authMethod is CONNECT's auth method name ("" = none).
	authMethod string
	// authExpires is when the credentials expire (zero = never).
	authExpires time.Time
	// authRefresh is the client's supports_auth_refresh feature flag.
	authRefresh bool
	// challenged is when AUTH_CHALLENGE was sent for expired credentials
	// (zero = not outstanding).
	challenged time.Time
}

// role is the connection's authenticated role.
func (c *conn) role() string {
	c.amu.Lock()
	defer c.amu.Unlock()
	return c.authRole
}

// refuse sends cmd, then closes the connection once it is written; serve
// stops reading.
func (c *conn) refuse(cmd []byte) {
	c.sendCmd(cmd)
	c.wmu.Lock()
	c.closing = true
	c.wmu.Unlock()
	select {
	case c.wsig <- struct{}{}:
	default:
	}
	select {
	case <-c.done:
	case <-time.After(5 * time.Second):
	}
}

func newConn(b *Broker, nc net.Conn) *conn {
	return &conn{b: b, nc: nc, remote: nc.RemoteAddr().String(), wsig: make(chan struct{}, 1),
		done: make(chan struct{}), producers: map[uint64]*producer{}, consumers: map[uint64]*consumer{}}
}

// send queues a complete frame.
func (c *conn) send(frame []byte) {
	c.wmu.Lock()
	if c.wclosed {
		c.wmu.Unlock()
		return
	}
	c.wq = append(c.wq, frame)
	c.wmu.Unlock()
	select {
	case c.wsig <- struct{}{}:
	default:
	}
}

func (c *conn) sendCmd(cmd []byte) { c.send(wire.AppendFrame(nil, cmd)) }

func (c *conn) writer() {
	w := bufio.NewWriterSize(c.nc, 64<<10)
	for {
		select {
		case <-c.wsig:
		case <-c.done:
			return
		}
		c.wmu.Lock()
		q := c.wq
		c.wq = nil
		c.wmu.Unlock()
		for _, f := range q {
			if _, err := w.Write(f); err != nil {
				c.close()
				return
			}
		}
		if err := w.Flush(); err != nil {
			c.close()
			return
		}
		c.wmu.Lock()
		closing := c.closing && len(c.wq) == 0
		c.wmu.Unlock()
		if closing {
			c.close()
			return
		}
	}
}

// close shuts the socket; serve then releases producers and consumers.
func (c *conn) close() {
	c.once.Do(func() {
		c.wmu.Lock()
		c.wclosed = true
		c.wmu.Unlock()
		close(c.done)
		c.nc.Close()
	})
}

func (c *conn) serve() {
	go c.writer()
	defer c.cleanup()
	defer c.close()
	if tc, ok := c.nc.(*tls.Conn); ok {
		ctx, cancel := context.WithTimeout(context.Background(), tlsHandshakeTimeout)
		err := tc.HandshakeContext(ctx)
		cancel()
		if err != nil {
			c.b.log.Debug("tls handshake failed", "remote", c.remote, "err", err)
			return
		}
		st := tc.ConnectionState()
		c.tlsState = &st
	}
	r := bufio.NewReaderSize(c.nc, 64<<10)
	maxFrame := c.b.cfg.MaxMessageSize + 64<<10
	connected := false
	for {
		_ = c.nc.SetReadDeadline(time.Now().Add(idleTimeout))
		f, err := wire.ReadFrame(r, maxFrame)
		if err != nil {
			if errors.Is(err, wire.ErrChecksum) && f != nil && f.Cmd.Send != nil {
				c.sendCmd(wire.SendError(f.Cmd.Send.ProducerID, f.Cmd.Send.SequenceID, wire.ErrChecksumCode, "checksum mismatch"))
				continue
			}
			if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) && !errors.Is(err, os.ErrDeadlineExceeded) {
				c.b.log.Warn("closing connection after bad frame", "remote", c.remote, "err", err)
			}
			return
		}
		if !connected {
			if f.Cmd.Type != wire.TypeConnect {
				c.b.log.Warn("first command is not CONNECT", "remote", c.remote, "type", f.Cmd.Type)
				return
			}
			c.clientVersion = f.Cmd.Connect.ClientVersion
			cn := f.Cmd.Connect
			res, err := c.b.authenticateConnect(cn.AuthMethodName, cn.AuthData, c.tlsState)
			if err != nil {
				c.b.log.Info("refusing connection", "remote", c.remote, "err", err)
				c.refuse(wire.Error(math.MaxUint64, wire.ErrAuthentication, err.Error()))
				return
			}
			c.amu.Lock()
			c.authRole, c.authMethod, c.authExpires, c.authRefresh = res.Role, cn.AuthMethodName, res.Expires, cn.SupportsAuthRefresh
			c.amu.Unlock()
			pv := f.Cmd.Connect.ProtocolVersion
			if pv > maxProtocolVersion {
				pv = maxProtocolVersion
			}
			c.sendCmd(wire.Connected(serverVersion, pv, int32(c.b.cfg.MaxMessageSize)))
			connected = true
			continue
		}
		if !c.handle(f) {
			return
		}
	}
}

// lookupTopic parses a topic a client looks up and checks the client may
// use it in some way; on failure it returns the error code to answer with.
func (c *conn) lookupTopic(topic string) (topicName, wire.ServerError, error) {
	n, err := parseTopic(topic)
	if err != nil {
		return n, wire.ErrInvalidTopicName, err
	}
	if err := c.b.authorize(c.role(), n, actionProduce, actionConsume, actionFunctions); err != nil {
		return n, wire.ErrAuthorization, err
	}
	return n, 0, nil
}

// handle processes one command; false closes the connection.
func (c *conn) handle(f *wire.Frame) bool {
	cmd := f.Cmd
	switch cmd.Type {
	case wire.TypePing:
		c.sendCmd(wire.Pong())
	case wire.TypePong:
	case wire.TypeAuthResponse:
		return c.handleAuthResponse(cmd.AuthResponse)
	case wire.TypeLookup:
		if _, code, err := c.lookupTopic(cmd.Lookup.Topic); err != nil {
			c.sendCmd(wire.LookupError(cmd.Lookup.RequestID, code, err.Error()))
			break
		}
		c.sendCmd(wire.LookupResponse(cmd.Lookup.RequestID, c.b.ServiceURL(), c.b.ServiceURLTLS()))
	case wire.TypePartitionedMetadata:
		n, code, err := c.lookupTopic(cmd.PartitionedMetadata.Topic)
		if err != nil {
			c.sendCmd(wire.PartitionedMetadataError(cmd.PartitionedMetadata.RequestID, code, err.Error()))
			break
		}
		np := 0
		if n.partition < 0 {
			np = c.b.partitions(n)
		}
		c.sendCmd(wire.PartitionedMetadataResponse(cmd.PartitionedMetadata.RequestID, uint32(np)))
	case wire.TypeProducer:
		c.handleProducer(cmd.Producer)
	case wire.TypeSend:
		c.handleSend(cmd.Send, f)
	case wire.TypeCloseProducer:
		c.mu.Lock()
		p := c.producers[cmd.CloseProducer.ProducerID]
		c.mu.Unlock()
		if p != nil {
			c.dropProducer(p, false)
		}
		c.sendCmd(wire.Success(cmd.CloseProducer.RequestID, nil))
	case wire.TypeSubscribe:
		c.handleSubscribe(cmd.Subscribe)
	case wire.TypeFlow:
		c.withAttachedLocked(cmd.Flow.ConsumerID, func(cs *consumer) {
			cs.s.announceLocked(cs)
			cs.permits += int64(cmd.Flow.Permits)
			cs.s.dispatchLocked()
		})
	case wire.TypeAck:
		c.handleAck(cmd.Ack)
	case wire.TypeRedeliverUnacked:
		c.withAttachedLocked(cmd.Redeliver.ConsumerID, func(cs *consumer) {
			cs.s.redeliverLocked(cs, cmd.Redeliver.MessageIDs)
		})
	case wire.TypeSeek:
		c.handleSeek(cmd.Seek)
	case wire.TypeGetLastMessageID:
		c.handleGetLastMessageID(cmd.GetLastMessageID)
	case wire.TypeCloseConsumer:
		if cs := c.consumer(cmd.CloseConsumer.ConsumerID); cs != nil {
			c.dropConsumer(cs, false)
		}
		c.sendCmd(wire.Success(cmd.CloseConsumer.RequestID, nil))
	case wire.TypeUnsubscribe:
		c.handleUnsubscribe(cmd.Unsubscribe)
	case wire.TypeGetTopicsOfNamespace:
		g := cmd.GetTopicsOfNamespace
		tenant, ns, _ := strings.Cut(g.Namespace, "/")
		if err := c.b.authorize(c.role(), topicName{tenant: tenant, namespace: ns}, actionProduce, actionConsume, actionFunctions); err != nil {
			c.sendCmd(wire.Error(g.RequestID, wire.ErrAuthorization, err.Error()))
			break
		}
		c.sendCmd(wire.TopicsOfNamespaceResponse(g.RequestID, c.b.topicsOfNamespace(g.Namespace)))
	case wire.TypeGetSchema:
		g := cmd.GetSchema
		if err := c.authorizeTopic(g.Topic, actionProduce, actionConsume, actionFunctions); err != nil {
			c.sendCmd(wire.GetSchemaError(g.RequestID, wire.ErrAuthorization, err.Error()))
			break
		}
		t, err := c.b.getTopic(g.Topic, false)
		if err != nil {
			c.sendCmd(wire.GetSchemaError(g.RequestID, wire.ErrTopicNotFound, "topic not found or no schema"))
			break
		}
		s, v, ok := t.schema(g.Version)
		if !ok {
			c.sendCmd(wire.GetSchemaError(g.RequestID, wire.ErrTopicNotFound, "topic not found or no schema"))
			break
		}
		c.sendCmd(wire.GetSchemaResponse(g.RequestID, s, v))
	case wire.TypeGetOrCreateSchema:
		g := cmd.GetOrCreateSchema
		if err := c.authorizeTopic(g.Topic, actionProduce); err != nil {
			c.sendCmd(wire.Error(g.RequestID, wire.ErrAuthorization, err.Error()))
			break
		}
		t, err := c.b.getTopic(g.Topic, true)
		if err != nil {
			c.sendCmd(wire.Error(g.RequestID, serverError(err), err.Error()))
			break
		}
		t.mu.Lock()
		v, err := t.registerSchemaLocked(g.Schema)
		t.mu.Unlock()
		if err != nil {
			c.sendCmd(wire.Error(g.RequestID, serverError(err), err.Error()))
			break
		}
		c.sendCmd(wire.GetOrCreateSchemaResponse(g.RequestID, v))
	case wire.TypeConsumerStats:
		c.handleConsumerStats(cmd.ConsumerStats)
	case wire.TypeTcClientConnectRequest:
		if cmd.RequestID != nil {
			c.sendCmd(wire.TcClientConnectError(*cmd.RequestID, "transactions are not supported by this broker"))
		}
	default:
		if cmd.RequestID != nil {
			c.sendCmd(wire.Error(*cmd.RequestID, wire.ErrNotAllowed, "command not supported by this broker"))
			return true
		}
		c.b.log.Warn("closing connection after unexpected command", "remote", c.remote, "type", cmd.Type)
		return false
	}
	return true
}

func (c *conn) consumer(id uint64) *consumer {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.consumers[id]
}

// withAttachedLocked runs f with the connection's consumer id, under its
// topic's lock, if that consumer is still attached to its subscription.
func (c *conn) withAttachedLocked(id uint64, f func(cs *consumer)) {
	cs := c.consumer(id)
	if cs == nil {
		return
	}
	t := cs.s.t
	t.mu.Lock()
	if cs.s.hasConsumerLocked(cs) {
		f(cs)
	}
	t.mu.Unlock()
}

// consumerOrError returns the consumer with id, or answers request
// requestID with ConsumerNotFound and returns nil.
func (c *conn) consumerOrError(id, requestID uint64) *consumer {
	cs := c.consumer(id)
	if cs == nil {
		c.sendCmd(wire.Error(requestID, wire.ErrConsumerNotFound, "consumer not found"))
	}
	return cs
}

func (s *subscription) hasConsumerLocked(c *consumer) bool {
	for _, x := range s.consumers {
		if x == c {
			return true
		}
	}
	return false
}

// authorizeTopic checks the connection's role may do one of actions on topic (a
// malformed name is left to the caller's own parsing).
func (c *conn) authorizeTopic(topic string, actions ...string) error {
	n, err := parseTopic(topic)
	if err != nil {
		return nil
	}
	return c.b.authorize(c.role(), n, actions...)
}

func (c *conn) handleProducer(cmd *wire.Producer) {
	c.mu.Lock()
	if old, ok := c.producers[cmd.ProducerID]; ok {
		c.mu.Unlock()
		if old.t.full == mustFull(cmd.Topic) {
			old.t.mu.Lock()
			last := old.t.lastSeqLocked(old.name)
			v := old.t.schemaVersionLocked(cmd.Schema)
			old.t.mu.Unlock()
			c.sendCmd(wire.ProducerSuccess(cmd.RequestID, old.name, last, v))
			return
		}
		c.sendCmd(wire.Error(cmd.RequestID, wire.ErrProducerBusy, "producer id already in use on this connection"))
		return
	}
	c.mu.Unlock()
	if cmd.Epoch > 0 || cmd.AccessMode == 2 {
		// Nothing to do for epochs; WaitForExclusive behaves like Exclusive.
		_ = cmd.Epoch
	}
	if err := c.authorizeTopic(cmd.Topic, actionProduce); err != nil {
		c.sendCmd(wire.Error(cmd.RequestID, serverError(err), err.Error()))
		return
	}
	t, err := c.b.getTopic(cmd.Topic, true)
	if err != nil {
		c.sendCmd(wire.Error(cmd.RequestID, serverError(err), err.Error()))
		return
	}
	c.admitProducer(t, cmd)
}

// admitProducer adds the producer to the topic and answers the request.
func (c *conn) admitProducer(t *topic, cmd *wire.Producer) {
	p, last, version, err := t.addProducer(c, cmd)
	if errors.Is(err, errWaitExclusive) {
		c.sendCmd(wire.ProducerWaiting(cmd.RequestID, cmd.ProducerName))
		return
	}
	if err != nil {
		c.sendCmd(wire.Error(cmd.RequestID, serverError(err), err.Error()))
		return
	}
	c.mu.Lock()
	c.producers[cmd.ProducerID] = p
	c.mu.Unlock()
	c.sendCmd(wire.ProducerSuccess(cmd.RequestID, p.name, last, version))
}

func (c *conn) isClosed() bool {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return c.wclosed
}

func mustFull(name string) string {
	n, err := parseTopic(name)
	if err != nil {
		return name
	}
	return n.String()
}

func (c *conn) handleSend(s *wire.Send, f *wire.Frame) {
	c.mu.Lock()
	p := c.producers[s.ProducerID]
	c.mu.Unlock()
	if p == nil {
		c.sendCmd(wire.SendError(s.ProducerID, s.SequenceID, wire.ErrServiceNotReady, "producer not found"))
		return
	}
	if s.TxnLeast != 0 || s.TxnMost != 0 {
		c.sendCmd(wire.SendError(s.ProducerID, s.SequenceID, wire.ErrNotAllowed, "transactions are not supported"))
		return
	}
	meta, err := wire.ParseMetadata(f.Payload)
	if err != nil {
		c.sendCmd(wire.SendError(s.ProducerID, s.SequenceID, wire.ErrUnknown, err.Error()))
		return
	}
	p.t.publish(&appendReq{p: p, send: s, payload: f.Payload, crc: f.Checksum, meta: meta,
		done: func(res appendResult, err error) {
			switch {
			case errors.Is(err, ErrTopicTerminated):
				c.sendCmd(wire.SendError(s.ProducerID, s.SequenceID, wire.ErrTopicTerminated, "TopicTerminatedError: "+err.Error()))
			case err != nil:
				c.sendCmd(wire.SendError(s.ProducerID, s.SequenceID, wire.ErrPersistence, err.Error()))
			case res.dup:
				c.sendCmd(wire.SendReceipt(s.ProducerID, s.SequenceID, s.HighestSequenceID,
					wire.MessageID{LedgerID: -1, EntryID: -1, Partition: -1, BatchIndex: -1}))
			default:
				c.sendCmd(wire.SendReceipt(s.ProducerID, s.SequenceID, s.HighestSequenceID, res.pos))
			}
		}})
}

func (c *conn) handleSubscribe(cmd *wire.Subscribe) {
	if old := c.consumer(cmd.ConsumerID); old != nil {
		if old.s.name == cmd.Subscription && old.s.t.full == mustFull(cmd.Topic) {
			c.sendCmd(wire.Success(cmd.RequestID, nil))
			return
		}
		c.sendCmd(wire.Error(cmd.RequestID, wire.ErrConsumerBusy, "consumer id already in use on this connection"))
		return
	}
	if err := checkSubscriptionName(cmd.Subscription); err != nil {
		c.sendCmd(wire.Error(cmd.RequestID, serverError(err), err.Error()))
		return
	}
	if n, err := parseTopic(cmd.Topic); err == nil && n.partition < 0 && c.b.partitions(n) > 0 {
		c.sendCmd(wire.Error(cmd.RequestID, wire.ErrNotAllowed, "topic is partitioned; subscribe to its partitions"))
		return
	}
	if err := c.authorizeTopic(cmd.Topic, actionConsume); err != nil {
		c.sendCmd(wire.Error(cmd.RequestID, serverError(err), err.Error()))
		return
	}
	t, err := c.b.getTopic(cmd.Topic, cmd.ForceTopicCreation)
	if err != nil {
		c.sendCmd(wire.Error(cmd.RequestID, serverError(err), err.Error()))
		return
	}
	cs := &consumer{id: cmd.ConsumerID, c: c, name: cmd.ConsumerName, priority: cmd.PriorityLevel,
		since: time.Now(), address: c.remote, metadata: kvMap(cmd.Metadata)}
	if cmd.KeyShared != nil && cmd.KeyShared.Sticky {
		cs.ranges = cmd.KeyShared.Ranges
		if cs.ranges == nil {
			cs.ranges = [][2]int32{}
		}
	}
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		c.sendCmd(wire.Error(cmd.RequestID, wire.ErrServiceNotReady, "topic is closing"))
		return
	}
	if cmd.Schema != nil {
		if _, err := t.registerSchemaLocked(cmd.Schema); err != nil {
			t.mu.Unlock()
			c.sendCmd(wire.Error(cmd.RequestID, serverError(err), err.Error()))
			return
		}
	}
	s, existed := t.subs[cmd.Subscription]
	if !existed {
		var md int64
		switch {
		case !cmd.Durable:
			md = t.startPositionLocked(cmd.StartMessageID) - 1
			if cmd.StartMessageID == nil && cmd.InitialEarliest {
				md = t.first - 1
			}
			if cmd.RollbackSeconds > 0 {
				md = t.seekByTimeLocked(time.Now().Add(-time.Duration(cmd.RollbackSeconds)*time.Second).UnixMilli()) - 1
			}
		case cmd.InitialEarliest:
			md = t.first - 1
		default:
			md = t.next - 1
		}
		s = newSubscription(t, cmd.Subscription, cmd.Durable, cmd.SubType, md)
	}
	cs.s = s
	if err := s.checkConsumerLocked(cmd.SubType); err != nil {
		t.mu.Unlock()
		c.sendCmd(wire.Error(cmd.RequestID, serverError(err), err.Error()))
		return
	}
	if !existed {
		t.subs[cmd.Subscription] = s
		if s.durable {
			s.dirty = true
			t.requestFlushLocked(nil)
		}
	}
	c.mu.Lock()
	c.consumers[cmd.ConsumerID] = cs
	c.mu.Unlock()
	// SUCCESS goes out before ACTIVE_CONSUMER_CHANGE so the client has
	// registered the consumer when the change arrives.
	c.sendCmd(wire.Success(cmd.RequestID, nil))
	_ = s.addConsumerLocked(cs, cmd.SubType)
	t.mu.Unlock()
}

// checkConsumerLocked reports whether a consumer of type typ may attach.
func (s *subscription) checkConsumerLocked(typ wire.SubType) error {
	if len(s.consumers) > 0 && typ != s.typ {
		return errorf(ErrConsumerBusy, "subscription %s is of type %s, not %s", s.name, s.typ, typ)
	}
	if typ == wire.SubExclusive && len(s.consumers) > 0 {
		return errorf(ErrConsumerBusy, "exclusive consumer is already connected to subscription %s", s.name)
	}
	return nil
}

func (c *conn) handleAck(a *wire.Ack) {
	cs := c.consumer(a.ConsumerID)
	if cs == nil {
		if a.RequestID != nil {
			code := wire.ErrConsumerNotFound
			c.sendCmd(wire.AckResponse(a.ConsumerID, *a.RequestID, &code, "consumer not found"))
		}
		return
	}
	if a.Txn {
		if a.RequestID != nil {
			code := wire.ErrNotAllowed
			c.sendCmd(wire.AckResponse(a.ConsumerID, *a.RequestID, &code, "transactions are not supported"))
		}
		return
	}
	t := cs.s.t
	t.mu.Lock()
	cs.s.ackLocked(cs, a)
	durable := cs.s.durable
	if a.RequestID != nil {
		rid := *a.RequestID
		if durable {
			t.requestFlushLocked(func(err error) {
				if err != nil {
					code := wire.ErrPersistence
					c.sendCmd(wire.AckResponse(a.ConsumerID, rid, &code, err.Error()))
					return
				}
				c.sendCmd(wire.AckResponse(a.ConsumerID, rid, nil, ""))
			})
		} else {
			c.sendCmd(wire.AckResponse(a.ConsumerID, rid, nil, ""))
		}
	} else if durable {
		t.requestFlushLocked(nil)
	}
	t.mu.Unlock()
}

func (c *conn) handleSeek(sk *wire.Seek) {
	cs := c.consumerOrError(sk.ConsumerID, sk.RequestID)
	if cs == nil {
		return
	}
	target := func(t *topic) int64 {
		if sk.MessageID != nil {
			return t.startPositionLocked(sk.MessageID)
		}
		return t.seekByTimeLocked(int64(*sk.PublishTime))
	}
	if err := cs.s.t.resetSubscription(cs.s.name, target); err != nil && !errors.Is(err, ErrSubscriptionNotFound) {
		c.sendCmd(wire.Error(sk.RequestID, serverError(err), err.Error()))
		return
	}
	c.sendCmd(wire.Success(sk.RequestID, nil))
}

func (c *conn) handleGetLastMessageID(g *wire.ConsumerRequest) {
	cs := c.consumerOrError(g.ConsumerID, g.RequestID)
	if cs == nil {
		return
	}
	t := cs.s.t
	t.mu.Lock()
	last := t.positionLocked(t.next - 1)
	if e := t.entryLocked(t.next - 1); e != nil && e.batched {
		last.BatchIndex = e.numMsgs - 1
	}
	md := t.positionLocked(cs.s.markDelete)
	t.mu.Unlock()
	c.sendCmd(wire.GetLastMessageIDResponse(g.RequestID, last, &md))
}

func (c *conn) handleUnsubscribe(u *wire.Unsubscribe) {
	cs := c.consumerOrError(u.ConsumerID, u.RequestID)
	if cs == nil {
		return
	}
	s := cs.s
	t := s.t
	t.mu.Lock()
	if !u.Force && len(s.consumers) > 1 {
		t.mu.Unlock()
		c.sendCmd(wire.Error(u.RequestID, wire.ErrUnknown, "subscription has other connected consumers"))
		return
	}
	others := []*consumer{}
	for _, x := range s.consumers {
		if x != cs {
			others = append(others, x)
		}
	}
	t.mu.Unlock()
	for _, x := range others {
		x.c.dropConsumer(x, true)
	}
	c.dropConsumer(cs, false)
	if err := t.deleteSubscription(s.name); err != nil {
		c.sendCmd(wire.Error(u.RequestID, serverError(err), err.Error()))
		return
	}
	c.sendCmd(wire.Success(u.RequestID, nil))
}

// deleteSubscription removes a subscription and its cursor file.
func (t *topic) deleteSubscription(name string) error {
	t.mu.Lock()
	s, ok := t.subs[name]
	if !ok || s.system {
		t.mu.Unlock()
		return errorf(ErrSubscriptionNotFound, "subscription %s", name)
	}
	if len(s.consumers) > 0 {
		t.mu.Unlock()
		return errorf(ErrConsumerBusy, "subscription %s has connected consumers", name)
	}
	if t.closed {
		t.mu.Unlock()
		return ErrClosed
	}
	delete(t.subs, name)
	s.dirty = false
	if !s.durable {
		t.mu.Unlock()
		return nil
	}
	// The flusher removes the file, so a flush of the cursor already under
	// way cannot write it back afterwards.
	t.cursorRemovals = append(t.cursorRemovals, s.cursorPath())
	wait := make(chan error, 1)
	t.requestFlushLocked(func(err error) { wait <- err })
	t.mu.Unlock()
	return <-wait
}

func (c *conn) handleConsumerStats(g *wire.ConsumerRequest) {
	cs := c.consumerOrError(g.ConsumerID, g.RequestID)
	if cs == nil {
		return
	}
	t := cs.s.t
	t.mu.Lock()
	permits := cs.permits
	if permits < 0 {
		permits = 0
	}
	resp := wire.ConsumerStatsResponse(g.RequestID, cs.name, uint64(permits), uint64(cs.unacked),
		cs.s.typ.String(), uint64(cs.s.backlogLocked()))
	t.mu.Unlock()
	c.sendCmd(resp)
}

// dropProducer detaches p; notify tells the client (CLOSE_PRODUCER).
func (c *conn) dropProducer(p *producer, notify bool) {
	c.mu.Lock()
	if c.producers[p.id] == p {
		delete(c.producers, p.id)
	}
	c.mu.Unlock()
	p.t.removeProducer(p)
	if notify {
		c.sendCmd(wire.CloseProducerCmd(p.id, math.MaxUint64))
	}
}

// dropConsumer detaches cs; notify tells the client (CLOSE_CONSUMER), which
// then reconnects. A non-durable subscription goes away with its last
// consumer.
func (c *conn) dropConsumer(cs *consumer, notify bool) { c.detachConsumer(cs, notify, false) }

// detachConsumer is dropConsumer; keep preserves a non-durable subscription
// left without consumers (after a seek, whose reset position the client
// picks up when it re-subscribes).
func (c *conn) detachConsumer(cs *consumer, notify, keep bool) {
	c.mu.Lock()
	if c.consumers[cs.id] == cs {
		delete(c.consumers, cs.id)
	}
	c.mu.Unlock()
	s := cs.s
	t := s.t
	t.mu.Lock()
	if s.hasConsumerLocked(cs) {
		s.removeConsumerLocked(cs)
		if !s.durable && !keep && len(s.consumers) == 0 && t.subs[s.name] == s {
			delete(t.subs, s.name)
		}
	}
	t.mu.Unlock()
	if notify {
		c.sendCmd(wire.CloseConsumerCmd(cs.id, math.MaxUint64))
	}
}

// cleanup releases everything the connection held.
func (c *conn) cleanup() {
	c.mu.Lock()
	ps := make([]*producer, 0, len(c.producers))
	for _, p := range c.producers {
		ps = append(ps, p)
	}
	cs := make([]*consumer, 0, len(c.consumers))
	for _, x := range c.consumers {
		cs = append(cs, x)
	}
	c.mu.Unlock()
	for _, p := range ps {
		c.dropProducer(p, false)
	}
	for _, x := range cs {
		c.dropConsumer(x, false)
	}
}

func kvMap(kvs []wire.KeyValue) map[string]string {
	m := map[string]string{}
	for _, kv := range kvs {
		m[kv.Key] = kv.Value
	}
	return m
}
