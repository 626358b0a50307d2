package wire

import (
	"bufio"
	"bytes"
	"errors"
	"testing"
)

func readResp(t testing.TB, frame []byte) *Response {
	t.Helper()
	r, err := ReadResponse(bufio.NewReader(bytes.NewReader(frame)), 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestResponsesRoundTrip(t *testing.T) {
	id := MessageID{LedgerID: 1 << 33, EntryID: 7, Partition: 2, BatchIndex: -1}
	r := readResp(t, AppendFrame(nil, Connected("srv", 20, 5<<20)))
	if r.Connected == nil || r.Connected.ServerVersion != "srv" || r.Connected.ProtocolVersion != 20 || r.Connected.MaxMessageSize != 5<<20 {
		t.Fatalf("connected %+v", r.Connected)
	}
	r = readResp(t, AppendFrame(nil, ProducerSuccess(3, "p", 41, nil)))
	if ps := r.ProducerSuccess; ps == nil || ps.RequestID != 3 || ps.ProducerName != "p" || ps.LastSequenceID != 41 || !ps.Ready {
		t.Fatalf("producer success %+v", r.ProducerSuccess)
	}
	r = readResp(t, AppendFrame(nil, ProducerWaiting(4, "p")))
	if r.ProducerSuccess.Ready {
		t.Fatal("waiting producer reported ready")
	}
	r = readResp(t, AppendFrame(nil, SendReceipt(1, 9, 12, id)))
	if sr := r.SendReceipt; sr == nil || sr.ProducerID != 1 || sr.SequenceID != 9 || sr.HighestSequenceID != 12 ||
		sr.MessageID == nil || sr.MessageID.LedgerID != id.LedgerID || sr.MessageID.EntryID != 7 || sr.MessageID.Partition != 2 {
		t.Fatalf("receipt %+v", r.SendReceipt)
	}
	r = readResp(t, AppendFrame(nil, SendError(1, 9, ErrPersistence, "disk")))
	if se := r.SendError; se == nil || se.Code != ErrPersistence || se.Message != "disk" || se.SequenceID != 9 {
		t.Fatalf("send error %+v", r.SendError)
	}
	r = readResp(t, AppendFrame(nil, Error(5, ErrProducerBusy, "busy")))
	if e := r.Error; e == nil || e.RequestID != 5 || e.Code != ErrProducerBusy || e.Message != "busy" {
		t.Fatalf("error %+v", r.Error)
	}
	r = readResp(t, AppendFrame(nil, CloseProducerCmd(8, 1)))
	if r.CloseProducer == nil || r.CloseProducer.ProducerID != 8 {
		t.Fatalf("close producer %+v", r.CloseProducer)
	}
	for _, cmd := range [][]byte{Ping(), Pong()} {
		if r := readResp(t, AppendFrame(nil, cmd)); r.Type != TypePing && r.Type != TypePong {
			t.Fatalf("type %d", r.Type)
		}
	}
	payload := NewPayload("p", 1, 2, []byte("body"))
	r = readResp(t, AppendPayloadFrame(nil, Message(4, id, 2, nil), CRC32C(payload), payload))
	if m := r.Message; m == nil || m.ConsumerID != 4 || m.MessageID.LedgerID != id.LedgerID || m.RedeliveryCount != 2 ||
		!bytes.Equal(r.Payload, payload) {
		t.Fatalf("message %+v %q", r.Message, r.Payload)
	}
	bad := AppendPayloadFrame(nil, Message(4, id, 0, nil), CRC32C(payload)+1, payload)
	if _, err := ReadResponse(bufio.NewReader(bytes.NewReader(bad)), 1<<20); !errors.Is(err, ErrChecksum) {
		t.Fatalf("message with a bad checksum: %v", err)
	}
	r = readResp(t, AppendFrame(nil, Success(9, nil)))
	if r.Success == nil || r.Success.RequestID != 9 {
		t.Fatalf("success %+v", r.Success)
	}
	r = readResp(t, AppendFrame(nil, CloseConsumerCmd(3, 1)))
	if r.CloseConsumer == nil || r.CloseConsumer.ConsumerID != 3 {
		t.Fatalf("close consumer %+v", r.CloseConsumer)
	}
	// Command types the client side does not handle: type only.
	if r := readResp(t, AppendFrame(nil, ActiveConsumerChange(1, true))); r.Type != TypeActiveConsumerChange {
		t.Fatalf("type %d", r.Type)
	}
}

func TestClientCommandsDecodeOnServer(t *testing.T) {
	f, err := DecodeFrame(AppendFrame(nil, ConnectCmd("c", 20))[4:])
	if err != nil || f.Cmd.Connect.ClientVersion != "c" || f.Cmd.Connect.ProtocolVersion != 20 {
		t.Fatalf("connect: %v %+v", err, f)
	}
	f, err = DecodeFrame(AppendFrame(nil, SubscribeCmd("persistent://t/n/x", "s", 5, 6, MessageID{LedgerID: 7, EntryID: 8, Partition: -1, BatchIndex: -1}))[4:])
	if sub := f.Cmd.Subscribe; err != nil || sub.Topic != "persistent://t/n/x" || sub.Subscription != "s" || sub.ConsumerID != 5 ||
		sub.RequestID != 6 || sub.Durable || sub.StartMessageID == nil || sub.StartMessageID.EntryID != 8 {
		t.Fatalf("subscribe: %v %+v", err, f)
	}
	f, err = DecodeFrame(AppendFrame(nil, FlowCmd(5, 3))[4:])
	if err != nil || f.Cmd.Flow.ConsumerID != 5 || f.Cmd.Flow.Permits != 3 {
		t.Fatalf("flow: %v %+v", err, f)
	}
	f, err = DecodeFrame(AppendFrame(nil, ProducerCmd("persistent://t/n/x", 2, 3, "pulsar.repl.a"))[4:])
	if err != nil || f.Cmd.Producer.Topic != "persistent://t/n/x" || f.Cmd.Producer.ProducerName != "pulsar.repl.a" ||
		f.Cmd.Producer.ProducerID != 2 || f.Cmd.Producer.RequestID != 3 {
		t.Fatalf("producer: %v %+v", err, f)
	}
	payload := NewPayload("orig", 5, 1000, []byte("body"))
	frame := AppendPayloadFrame(nil, SendCmd(2, 5, 9, 4), CRC32C(payload), payload)
	f, err = DecodeFrame(frame[4:])
	if err != nil {
		t.Fatal(err)
	}
	if s := f.Cmd.Send; s.ProducerID != 2 || s.SequenceID != 5 || s.HighestSequenceID != 9 || s.NumMessages != 4 {
		t.Fatalf("send %+v", s)
	}
}

func TestWithReplicatedFrom(t *testing.T) {
	payload := NewPayload("orig", 5, 1000, []byte("body"))
	out, err := WithReplicatedFrom(payload, "a")
	if err != nil {
		t.Fatal(err)
	}
	md, err := ParseMetadata(out)
	if err != nil {
		t.Fatal(err)
	}
	if md.ReplicatedFrom != "a" || md.ProducerName != "orig" || md.SequenceID != 5 || md.PublishTime != 1000 {
		t.Fatalf("metadata %+v", md)
	}
	body, err := Body(out)
	if err != nil || string(body) != "body" {
		t.Fatalf("body %q %v", body, err)
	}
	// The original metadata bytes are a prefix of the new ones.
	if !bytes.Equal(out[4:4+len(payload)-4-4], payload[4:len(payload)-4]) {
		t.Fatal("original metadata bytes changed")
	}
	if _, err := WithReplicatedFrom([]byte{0, 0, 0, 9, 1}, "a"); err == nil {
		t.Fatal("accepted a truncated payload")
	}
}

func TestRejectMalformedResponses(t *testing.T) {
	good := AppendFrame(nil, Connected("s", 20, 1))
	for name, b := range map[string][]byte{
		"no server version":  AppendFrame(nil, base(TypeConnected, enc{0x10, 20})),
		"receipt no seq":     AppendFrame(nil, base(TypeSendReceipt, enc{0x08, 1})),
		"error missing code": AppendFrame(nil, base(TypeError, enc{0x08, 1})),
		"truncated":          good[:len(good)-1],
		"payload after":      append(AppendFrame(nil, Connected("s", 20, 1)), 0),
	} {
		t.Run(name, func(t *testing.T) {
			if name == "payload after" {
				// Fix the total size so the frame is whole but carries a
				// byte after the command.
				b[3]++
			}
			if _, err := ReadResponse(bufio.NewReader(bytes.NewReader(b)), 1<<20); err == nil {
				t.Fatal("accepted")
			}
		})
	}
}

// FuzzReadResponse checks that no input makes the response decoder panic
// and that every decoded known response carries its body.
func FuzzReadResponse(f *testing.F) {
	id := MessageID{LedgerID: 3, EntryID: 4, Partition: -1, BatchIndex: -1}
	for _, cmd := range [][]byte{Connected("s", 20, 1<<20), ProducerSuccess(1, "p", -1, []byte{1}),
		SendReceipt(1, 2, 2, id), SendError(1, 2, ErrPersistence, "x"), Error(1, ErrUnknown, "y"),
		CloseProducerCmd(1, 2), Ping(), Pong(), AuthChallenge("s", 20, "token", []byte("refresh"))} {
		f.Add(AppendFrame(nil, cmd))
	}
	payload := NewPayload("p", 1, 2, []byte("x"))
	f.Add(AppendPayloadFrame(nil, Message(1, id, 0, nil), CRC32C(payload), payload))
	f.Add(AppendFrame(nil, Success(1, nil)))
	f.Add(AppendFrame(nil, CloseConsumerCmd(1, 2)))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := ReadResponse(bufio.NewReader(bytes.NewReader(b)), 1<<20)
		if err != nil {
			return
		}
		var ok bool
		switch r.Type {
		case TypeConnected:
			ok = r.Connected != nil
		case TypeProducerSuccess:
			ok = r.ProducerSuccess != nil
		case TypeSendReceipt:
			ok = r.SendReceipt != nil
		case TypeSendError:
			ok = r.SendError != nil
		case TypeError:
			ok = r.Error != nil
		case TypeCloseProducer:
			ok = r.CloseProducer != nil
		case TypeCloseConsumer:
			ok = r.CloseConsumer != nil
		case TypeSuccess:
			ok = r.Success != nil
		case TypeMessage:
			ok = r.Message != nil && len(r.Payload) >= 4
		default:
			ok = true
		}
		if !ok {
			t.Fatalf("response type %d without body", r.Type)
		}
	})
}

// FuzzParseMetadata checks the metadata parser and the replicated_from
// rewrite on arbitrary payloads.
func FuzzParseMetadata(f *testing.F) {
	f.Add(NewPayload("p", 1, 2, []byte("x")))
	p, _ := WithReplicatedFrom(NewPayload("p", 1, 2, nil), "a")
	f.Add(p)
	f.Fuzz(func(t *testing.T, b []byte) {
		md, err := ParseMetadata(b)
		if err != nil || md.ReplicatedFrom != "" {
			return
		}
		out, err := WithReplicatedFrom(b, "zz")
		if err != nil {
			t.Fatalf("rewrite of parsable metadata failed: %v", err)
		}
		md2, err := ParseMetadata(out)
		if err != nil {
			t.Fatalf("rewritten metadata does not parse: %v", err)
		}
		if md2.ReplicatedFrom != "zz" || md2.ProducerName != md.ProducerName || md2.SequenceID != md.SequenceID {
			t.Fatalf("rewrite changed metadata: %+v -> %+v", md, md2)
		}
	})
}
