package wire

import (
	"bufio"
	"encoding/binary"
	"fmt"
)

// The client side of the protocol, as the broker speaks it when it is
// itself a client: replicators producing to a remote cluster's broker and
// the health check producing to and reading from this broker's own
// listener. Only what those need is here.

// ConnectCmd: 1 client_version, 4 protocol_version.
func ConnectCmd(clientVersion string, protocolVersion int32) []byte {
	return ConnectAuthCmd(clientVersion, protocolVersion, "", nil)
}

// ConnectAuthCmd is CONNECT with credentials: 3 auth_data,
// 5 auth_method_name (both left out when method is empty), and
// 10 feature_flags with supports_auth_refresh set, as the client answers
// AUTH_CHALLENGE.
func ConnectAuthCmd(clientVersion string, protocolVersion int32, method string, data []byte) []byte {
	var e, ff enc
	e.str(1, clientVersion)
	if method != "" {
		e.bytes(3, data)
	}
	e.int(4, int64(protocolVersion))
	if method != "" {
		e.str(5, method)
	}
	ff.boolean(1, true)
	e.msg(10, ff)
	return base(TypeConnect, e)
}

// AuthResponseCmd answers AUTH_CHALLENGE: 1 client_version, 2 response
// (AuthData: 1 auth_method_name, 2 auth_data), 3 protocol_version.
func AuthResponseCmd(clientVersion string, protocolVersion int32, method string, data []byte) []byte {
	return authExchange(TypeAuthResponse, clientVersion, protocolVersion, method, data)
}

// ProducerCmd: 1 topic, 2 producer_id, 3 request_id, 4 producer_name,
// 9 user_provided_producer_name.
func ProducerCmd(topic string, producerID, requestID uint64, name string) []byte {
	var e enc
	e.str(1, topic)
	e.uint(2, producerID)
	e.uint(3, requestID)
	if name != "" {
		e.str(4, name)
		e.boolean(9, true)
	}
	return base(TypeProducer, e)
}

// SendCmd: 1 producer_id, 2 sequence_id, 3 num_messages,
// 6 highest_sequence_id (only when above sequence_id).
func SendCmd(producerID, seq, highestSeq uint64, numMessages int32) []byte {
	var e enc
	e.uint(1, producerID)
	e.uint(2, seq)
	if numMessages > 1 {
		e.int(3, int64(numMessages))
	}
	if highestSeq > seq {
		e.uint(6, highestSeq)
	}
	return base(TypeSend, e)
}

// SubscribeCmd subscribes a non-durable Exclusive consumer (a reader)
// starting at start: 1 topic, 2 subscription, 3 subType, 4 consumer_id,
// 5 request_id, 8 durable (false), 9 start_message_id.
func SubscribeCmd(topic, sub string, consumerID, requestID uint64, start MessageID) []byte {
	var e enc
	e.str(1, topic)
	e.str(2, sub)
	e.int(3, int64(SubExclusive))
	e.uint(4, consumerID)
	e.uint(5, requestID)
	e.boolean(8, false)
	e.msg(9, start.encode())
	return base(TypeSubscribe, e)
}

// FlowCmd: 1 consumer_id, 2 messagePermits.
func FlowCmd(consumerID uint64, permits uint32) []byte {
	var e enc
	e.uint(1, consumerID)
	e.uint(2, uint64(permits))
	return base(TypeFlow, e)
}

// Response is a decoded command a broker sends to a client. Exactly the
// body matching Type is set; PING and PONG have none, and command types
// the broker's client side does not handle are returned with Type only.
type Response struct {
	Type            Type
	Connected       *ConnectedResp
	ProducerSuccess *ProducerSuccessResp
	SendReceipt     *SendReceiptResp
	SendError       *SendErrorResp
	Error           *ErrorResp
	CloseProducer   *CloseProducer
	CloseConsumer   *CloseConsumer
	// Success is SUCCESS: 1 request_id.
	Success *RequestResp
	// AuthChallenge is AUTH_CHALLENGE: the broker asks for fresh
	// credentials (auth_method_name and auth_data of its challenge).
	AuthChallenge *AuthChallengeResp
	// Message is MESSAGE; Payload then holds its metadata size, metadata
	// and payload (checksum verified).
	Message *MessageResp
	Payload []byte
}

// AuthChallengeResp: 2 challenge (AuthData: 1 auth_method_name,
// 2 auth_data), 3 protocol_version.
type AuthChallengeResp struct {
	AuthMethodName  string
	AuthData        []byte
	ProtocolVersion int32
}

// RequestResp is a response that carries only its request id.
type RequestResp struct{ RequestID uint64 }

// MessageResp: 1 consumer_id, 2 message_id, 3 redelivery_count.
type MessageResp struct {
	ConsumerID      uint64
	MessageID       MessageID
	RedeliveryCount uint32
}

// ConnectedResp: 1 server_version, 2 protocol_version, 3 max_message_size.
type ConnectedResp struct {
	ServerVersion   string
	ProtocolVersion int32
	MaxMessageSize  int32
}

// ProducerSuccessResp: 1 request_id, 2 producer_name, 3 last_sequence_id
// (default -1), 6 producer_ready (default true).
type ProducerSuccessResp struct {
	RequestID      uint64
	ProducerName   string
	LastSequenceID int64
	Ready          bool
}

// SendReceiptResp: 1 producer_id, 2 sequence_id, 3 message_id,
// 4 highest_sequence_id.
type SendReceiptResp struct {
	ProducerID        uint64
	SequenceID        uint64
	HighestSequenceID uint64
	// MessageID is nil when the broker sent none.
	MessageID *MessageID
}

// SendErrorResp: 1 producer_id, 2 sequence_id, 3 error, 4 message.
type SendErrorResp struct {
	ProducerID uint64
	SequenceID uint64
	Code       ServerError
	Message    string
}

// ErrorResp: 1 request_id, 2 error, 3 message.
type ErrorResp struct {
	RequestID uint64
	Code      ServerError
	Message   string
}

// ReadResponse reads and decodes one frame sent by a broker. maxFrame
// bounds the declared total size. Frames with a payload (MESSAGE) are
// accepted for command types a producer does not handle and their payload
// is ignored.
func ReadResponse(r *bufio.Reader, maxFrame int) (*Response, error) {
	buf, err := readFrameBody(r, maxFrame)
	if err != nil {
		return nil, err
	}
	return DecodeResponseFrame(buf)
}

// DecodeResponseFrame decodes a frame body (everything after the total
// size) sent by a broker.
func DecodeResponseFrame(buf []byte) (*Response, error) {
	body, rest, err := splitCommand(buf)
	if err != nil {
		return nil, err
	}
	resp, err := DecodeResponse(body)
	if err != nil {
		return nil, err
	}
	switch {
	case resp.Type == TypeMessage:
		if resp.Payload, err = messagePayload(rest); err != nil {
			return nil, err
		}
	case resp.known() && len(rest) != 0:
		return nil, fmt.Errorf("%w: unexpected payload after command %d", ErrMalformed, resp.Type)
	}
	return resp, nil
}

// messagePayload checks and returns a MESSAGE's payload: an optional
// broker entry metadata block (magic 0x0e02, size, metadata), then magic
// 0x0e01, CRC32C, and the metadata size, metadata and payload.
func messagePayload(rest []byte) ([]byte, error) {
	if len(rest) >= 6 && binary.BigEndian.Uint16(rest) == MagicBrokerEntryMD {
		n := binary.BigEndian.Uint32(rest[2:])
		if uint64(n) > uint64(len(rest)-6) {
			return nil, fmt.Errorf("%w: broker entry metadata size %d exceeds frame", ErrMalformed, n)
		}
		rest = rest[6+n:]
	}
	if len(rest) < 6 || binary.BigEndian.Uint16(rest) != MagicCRC32C {
		return nil, fmt.Errorf("%w: MESSAGE without checksummed payload", ErrMalformed)
	}
	sum := binary.BigEndian.Uint32(rest[2:])
	payload := rest[6:]
	if CRC32C(payload) != sum {
		return nil, ErrChecksum
	}
	if _, err := ParseMetadata(payload); err != nil {
		return nil, err
	}
	return payload, nil
}

func (r *Response) known() bool {
	switch r.Type {
	case TypeConnected, TypeProducerSuccess, TypeSendReceipt, TypeSendError, TypeError,
		TypeCloseProducer, TypeCloseConsumer, TypeSuccess, TypeMessage, TypePing, TypePong, TypeAuthChallenge:
		return true
	}
	return false
}

// DecodeResponse decodes a BaseCommand sent by a broker.
func DecodeResponse(b []byte) (*Response, error) {
	t, fs, err := parseBase(b)
	if err != nil {
		return nil, err
	}
	r := &Response{Type: t}
	if !r.known() || t == TypePing || t == TypePong {
		return r, nil
	}
	bf, err := fs.body(t)
	if err != nil {
		return nil, err
	}
	switch r.Type {
	case TypeConnected:
		if err := bf.need("CONNECTED", 1); err != nil {
			return nil, err
		}
		r.Connected = &ConnectedResp{ServerVersion: bf.str(1), ProtocolVersion: bf.i32(2, 0), MaxMessageSize: bf.i32(3, 0)}
	case TypeProducerSuccess:
		if err := bf.need("PRODUCER_SUCCESS", 1, 2); err != nil {
			return nil, err
		}
		r.ProducerSuccess = &ProducerSuccessResp{RequestID: bf.u64(1, 0), ProducerName: bf.str(2),
			LastSequenceID: bf.i64(3, -1), Ready: bf.boolean(6, true)}
	case TypeSendReceipt:
		if err := bf.need("SEND_RECEIPT", 1, 2); err != nil {
			return nil, err
		}
		sr := &SendReceiptResp{ProducerID: bf.u64(1, 0), SequenceID: bf.u64(2, 0), HighestSequenceID: bf.u64(4, 0)}
		if mb, ok := bf.bytes(3); ok {
			id, err := decodeMessageID(mb)
			if err != nil {
				return nil, err
			}
			sr.MessageID = &id
		}
		r.SendReceipt = sr
	case TypeSendError:
		if err := bf.need("SEND_ERROR", 1, 2, 3, 4); err != nil {
			return nil, err
		}
		r.SendError = &SendErrorResp{ProducerID: bf.u64(1, 0), SequenceID: bf.u64(2, 0),
			Code: ServerError(bf.i32(3, 0)), Message: bf.str(4)}
	case TypeError:
		if err := bf.need("ERROR", 1, 2, 3); err != nil {
			return nil, err
		}
		r.Error = &ErrorResp{RequestID: bf.u64(1, 0), Code: ServerError(bf.i32(2, 0)), Message: bf.str(3)}
	case TypeCloseProducer:
		if r.CloseProducer, err = decodeCloseProducer(bf); err != nil {
			return nil, err
		}
	case TypeCloseConsumer:
		if r.CloseConsumer, err = decodeCloseConsumer(bf); err != nil {
			return nil, err
		}
	case TypeSuccess:
		if err := bf.need("SUCCESS", 1); err != nil {
			return nil, err
		}
		r.Success = &RequestResp{RequestID: bf.u64(1, 0)}
	case TypeAuthChallenge:
		ac := &AuthChallengeResp{ProtocolVersion: bf.i32(3, 0)}
		if cb, ok := bf.bytes(2); ok {
			cf, err := parse(cb)
			if err != nil {
				return nil, err
			}
			data, _ := cf.bytes(2)
			ac.AuthMethodName, ac.AuthData = cf.str(1), append([]byte(nil), data...)
		}
		r.AuthChallenge = ac
	case TypeMessage:
		if err := bf.need("MESSAGE", 1, 2); err != nil {
			return nil, err
		}
		mb, _ := bf.bytes(2)
		id, err := decodeMessageID(mb)
		if err != nil {
			return nil, err
		}
		r.Message = &MessageResp{ConsumerID: bf.u64(1, 0), MessageID: id, RedeliveryCount: uint32(bf.u64(3, 0))}
	}
	return r, nil
}
