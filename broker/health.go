package broker

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/meshfed/meshfed/broker/wire"
)

// healthTimeout bounds one health check.
const healthTimeout = 10 * time.Second

// heartbeatTenant is the tenant of the internal heartbeat topic. Topics in
// it have no tenant or namespace metadata, are not listed among a
// namespace's topics, not exported on /metrics and never replicated.
const heartbeatTenant = "pulsar"

// heartbeatTopic is the topic the health check produces to.
func (b *Broker) heartbeatTopic() string {
	return "persistent://" + heartbeatTenant + "/" + b.cfg.ClusterName + "/healthcheck"
}

// isHeartbeat reports whether n is the internal heartbeat topic.
func (b *Broker) isHeartbeat(n topicName) bool {
	return n.tenant == heartbeatTenant && n.namespace == b.cfg.ClusterName && n.local == "healthcheck"
}

// dialSelf connects to the broker's own binary-protocol listener (the
// plaintext one if it has one) as its internal client.
func (b *Broker) dialSelf(ctx context.Context) (*remoteConn, error) {
	// The listener's own address, not the advertised one, which may only
	// resolve for clients elsewhere.
	opts := dialOptions{auth: b.internalAuth()}
	if b.ln != nil {
		return dialBroker(ctx, "pulsar://"+b.ln.Addr().String(), opts)
	}
	opts.tls = b.tls.internalClientConfig()
	return dialBroker(ctx, "pulsar+ssl://"+b.tlsLn.Addr().String(), opts)
}

// HealthCheck does what Pulsar's broker health check does: through the
// broker's own binary-protocol listener it produces a message to an
// internal heartbeat topic, waits for the durable receipt, and reads the
// message back with a reader starting at the id the receipt names (the
// broker dispatches it from the segment file). It returns nil only if the
// bytes read back are the ones sent. Checks run one at a time.
func (b *Broker) HealthCheck(ctx context.Context) error {
	b.healthMu.Lock()
	defer b.healthMu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, healthTimeout)
	defer cancel()
	c, err := b.dialSelf(ctx)
	if err != nil {
		return fmt.Errorf("health check: %w", err)
	}
	defer c.close()
	topic := b.heartbeatTopic()
	name := "meshfed-healthcheck-" + b.cfg.ClusterName
	var ps *wire.ProducerSuccessResp
	for {
		// A producer of the previous check may still be registered if its
		// connection was dropped without closing it; the broker releases
		// it once it sees the connection gone.
		ps, err = c.createProducer(ctx, topic, name, 1, b.healthReq.Add(1))
		if err == nil || !isRemoteCode(err, wire.ErrProducerBusy) || ctx.Err() != nil {
			break
		}
		select {
		case <-ctx.Done():
		case <-time.After(20 * time.Millisecond):
		}
	}
	if err != nil {
		return fmt.Errorf("health check: %w", err)
	}
	nonce := make([]byte, 8)
	_, _ = rand.Read(nonce)
	seq := uint64(ps.LastSequenceID + 1)
	payload := wire.NewPayload(name, seq, uint64(time.Now().UnixMilli()), []byte("healthcheck "+hex.EncodeToString(nonce)))
	if dl, ok := ctx.Deadline(); ok {
		_ = c.nc.SetDeadline(dl)
	}
	if err := c.write(wire.AppendPayloadFrame(nil, wire.SendCmd(1, seq, seq, 1), wire.CRC32C(payload), payload)); err != nil {
		return fmt.Errorf("health check: send: %w", err)
	}
	var receipt *wire.SendReceiptResp
	for receipt == nil {
		resp, err := c.read()
		if err != nil {
			return fmt.Errorf("health check: wait for send receipt: %w", err)
		}
		switch {
		case resp.SendError != nil:
			return fmt.Errorf("health check: send: %w", &remoteError{resp.SendError.Code, resp.SendError.Message})
		case resp.CloseProducer != nil:
			return errors.New("health check: the broker closed the heartbeat producer")
		case resp.SendReceipt != nil:
			receipt = resp.SendReceipt
		}
	}
	if receipt.MessageID == nil || receipt.MessageID.EntryID < 0 {
		return errors.New("health check: the send receipt carries no stored message id")
	}
	// Consume it: a reader starting at the id the receipt names gets the
	// entry read back from the segment file.
	at := *receipt.MessageID
	reqID := b.healthReq.Add(1)
	if err := c.write(wire.AppendFrame(nil, wire.SubscribeCmd(topic, "meshfed-healthcheck", 1, reqID, at)),
		wire.AppendFrame(nil, wire.FlowCmd(1, 1))); err != nil {
		return fmt.Errorf("health check: subscribe: %w", err)
	}
	for {
		resp, err := c.read()
		if err != nil {
			return fmt.Errorf("health check: wait for the message: %w", err)
		}
		switch {
		case resp.Error != nil && resp.Error.RequestID == reqID:
			return fmt.Errorf("health check: subscribe: %w", &remoteError{resp.Error.Code, resp.Error.Message})
		case resp.CloseConsumer != nil:
			return errors.New("health check: the broker closed the heartbeat reader")
		case resp.Message != nil:
			if resp.Message.MessageID.LedgerID != at.LedgerID || resp.Message.MessageID.EntryID != at.EntryID {
				return fmt.Errorf("health check: read %d:%d, sent %d:%d", resp.Message.MessageID.LedgerID,
					resp.Message.MessageID.EntryID, at.LedgerID, at.EntryID)
			}
			if !bytes.Equal(resp.Payload, payload) {
				return fmt.Errorf("health check: entry %d:%d read back differs from what was sent", at.LedgerID, at.EntryID)
			}
			closeHealthClients(c, b.healthReq.Add(1), b.healthReq.Add(1))
			return nil
		}
	}
}

// healthHTTP serves GET /admin/v2/brokers/health: "ok" after a successful
// check, Pulsar's {"reason": ...} with 500 otherwise.
func (b *Broker) healthHTTP(w http.ResponseWriter, r *http.Request) {
	if err := b.HealthCheck(r.Context()); err != nil {
		b.log.Warn("health check failed", "err", err)
		httpError(w, err)
		return
	}
	w.Header().Set("Content-Type", "text/plain")
	_, _ = w.Write([]byte("ok"))
}

// closeHealthClients closes the check's producer and reader and waits for
// both answers, so the next check can register the same producer name
// without waiting for the broker to notice a closed connection. Errors do
// not matter: the connection is closed next anyway.
func closeHealthClients(c *remoteConn, reqProducer, reqConsumer uint64) {
	if c.write(wire.AppendFrame(nil, wire.CloseProducerCmd(1, reqProducer)),
		wire.AppendFrame(nil, wire.CloseConsumerCmd(1, reqConsumer))) != nil {
		return
	}
	for answered := 0; answered < 2; {
		resp, err := c.read()
		if err != nil {
			return
		}
		if resp.Success != nil || resp.Error != nil {
			answered++
		}
	}
}
