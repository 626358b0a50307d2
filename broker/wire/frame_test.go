package wire

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"testing"
)

// sendFrame builds a SEND frame with valid metadata.
func sendFrame(t testing.TB, corrupt bool) []byte {
	var md enc
	md.str(1, "p")
	md.uint(2, 7)
	md.uint(3, 1000)
	md.int(11, 3)
	payload := binary.BigEndian.AppendUint32(nil, uint32(len(md)))
	payload = append(payload, md...)
	payload = append(payload, "hello"...)
	var send enc
	send.uint(1, 1)
	send.uint(2, 7)
	sum := CRC32C(payload)
	if corrupt {
		sum++
	}
	return AppendPayloadFrame(nil, base(TypeSend, send), sum, payload)
}

func TestDecodeSend(t *testing.T) {
	f, err := ReadFrame(bufio.NewReader(bytes.NewReader(sendFrame(t, false))), 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	if f.Cmd.Type != TypeSend || f.Cmd.Send.ProducerID != 1 || f.Cmd.Send.SequenceID != 7 {
		t.Fatalf("bad command %+v", f.Cmd.Send)
	}
	md, err := ParseMetadata(f.Payload)
	if err != nil {
		t.Fatal(err)
	}
	if md.ProducerName != "p" || md.NumMessages != 3 || !md.Batched {
		t.Fatalf("bad metadata %+v", md)
	}
	if _, err := ReadFrame(bufio.NewReader(bytes.NewReader(sendFrame(t, true))), 1<<20); !errors.Is(err, ErrChecksum) {
		t.Fatalf("corrupt checksum: got %v", err)
	}
}

func TestRejectMalformed(t *testing.T) {
	good := AppendFrame(nil, Ping())
	cases := map[string][]byte{
		"huge size":          {0x7f, 0, 0, 0},
		"command too long":   {0, 0, 0, 8, 0, 0, 0, 9, 1, 2, 3, 4},
		"no type":            AppendFrame(nil, []byte{0x12, 0}),
		"bad varint":         AppendFrame(nil, []byte{0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}),
		"missing body":       AppendFrame(nil, []byte{0x08, byte(TypeSubscribe)}),
		"trailing payload":   append(good[:len(good):len(good)], 1, 2),
		"truncated":          good[:len(good)-1],
		"subscribe required": AppendFrame(nil, base(TypeSubscribe, enc{0x0a, 1, 'x'})),
	}
	// The trailing-payload case needs its sizes fixed up to be a whole frame.
	tp := cases["trailing payload"]
	binary.BigEndian.PutUint32(tp, uint32(len(tp)-4))
	for name, b := range cases {
		t.Run(name, func(t *testing.T) {
			if _, err := ReadFrame(bufio.NewReader(bytes.NewReader(b)), 1<<20); err == nil {
				t.Fatal("accepted")
			}
		})
	}
}

func TestRoundTripResponses(t *testing.T) {
	for name, cmd := range map[string][]byte{
		"connected": Connected("x", 20, 5<<20),
		"message":   Message(3, MessageID{LedgerID: 1, EntryID: 2, Partition: -1, BatchIndex: -1}, 2, []int64{5}),
		"receipt":   SendReceipt(1, 2, 2, MessageID{LedgerID: 1, EntryID: 9, Partition: 3, BatchIndex: -1}),
		"success":   Success(4, &Schema{Name: "s", Type: 2, Data: []byte("{}")}),
	} {
		fs, err := parse(cmd)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if _, ok := fs.uint(1); !ok {
			t.Fatalf("%s: no type", name)
		}
	}
}

// FuzzReadFrame checks that no input makes the decoder panic and that every
// accepted frame has a consistent decoded form.
func FuzzReadFrame(f *testing.F) {
	f.Add(AppendFrame(nil, Ping()))
	f.Add(AppendFrame(nil, ConnectAuthCmd("v", 20, "token", []byte("a.b.c"))))
	f.Add(AppendFrame(nil, AuthResponseCmd("v", 20, "basic", []byte("u:p"))))
	f.Add(sendFrame(f, false))
	f.Add(sendFrame(f, true))
	var sub enc
	sub.str(1, "persistent://public/default/t")
	sub.str(2, "s")
	sub.uint(3, 1)
	sub.uint(4, 1)
	sub.uint(5, 1)
	sub.msg(9, MessageID{LedgerID: 1, EntryID: 2, Partition: -1, BatchIndex: 3, AckSet: []int64{7}}.encode())
	f.Add(AppendFrame(nil, base(TypeSubscribe, sub)))
	var ack enc
	ack.uint(1, 1)
	ack.uint(2, 0)
	ack.msg(3, MessageID{LedgerID: 1, EntryID: 2, Partition: -1, BatchIndex: -1}.encode())
	ack.uint(8, 9)
	f.Add(AppendFrame(nil, base(TypeAck, ack)))
	var conn enc
	conn.str(1, "client")
	conn.uint(4, 20)
	f.Add(AppendFrame(nil, base(TypeConnect, conn)))
	f.Fuzz(func(t *testing.T, b []byte) {
		fr, err := ReadFrame(bufio.NewReader(bytes.NewReader(b)), 1<<20)
		if err != nil {
			return
		}
		if fr.Cmd == nil {
			t.Fatal("frame without command")
		}
		if fr.Cmd.Type == TypeSend {
			if fr.Cmd.Send == nil || fr.Payload == nil {
				t.Fatal("SEND without body or payload")
			}
			if CRC32C(fr.Payload) != fr.Checksum {
				t.Fatal("checksum not verified")
			}
		}
	})
}
