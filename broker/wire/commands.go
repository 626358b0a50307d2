package wire

import (
	"fmt"
)

// Command is a decoded BaseCommand. Exactly the body matching Type is set
// (PING and PONG have no body).
type Command struct {
	Type Type

	Connect              *Connect
	Subscribe            *Subscribe
	Producer             *Producer
	Send                 *Send
	Ack                  *Ack
	Flow                 *Flow
	Unsubscribe          *Unsubscribe
	CloseProducer        *CloseProducer
	CloseConsumer        *CloseConsumer
	Redeliver            *Redeliver
	PartitionedMetadata  *TopicRequest
	Lookup               *TopicRequest
	Seek                 *Seek
	GetLastMessageID     *ConsumerRequest
	ConsumerStats        *ConsumerRequest
	GetTopicsOfNamespace *GetTopicsOfNamespace
	GetSchema            *GetSchema
	GetOrCreateSchema    *GetOrCreateSchema
	AuthResponse         *AuthResponse
	// RequestID is set for command types the broker does not implement but
	// whose body carries a request_id in field 1, so it can answer them with
	// an error instead of leaving the peer waiting.
	RequestID *uint64
}

// Connect: 1 client_version, 2 auth_method (deprecated enum), 3 auth_data,
// 4 protocol_version, 5 auth_method_name, 10 feature_flags (FeatureFlags:
// 1 supports_auth_refresh).
type Connect struct {
	ClientVersion   string
	ProtocolVersion int32
	AuthMethodName  string
	// HasAuthMethodName is set when field 5 is present (possibly empty).
	HasAuthMethodName bool
	// AuthMethod is the deprecated enum (0 = absent or none).
	AuthMethod int32
	AuthData   []byte
	// SupportsAuthRefresh is the client's FeatureFlags.supports_auth_refresh:
	// it answers AUTH_CHALLENGE on an established connection.
	SupportsAuthRefresh bool
}

// AuthResponse (AUTH_RESPONSE): 1 client_version, 2 response (AuthData:
// 1 auth_method_name, 2 auth_data), 3 protocol_version.
type AuthResponse struct {
	ClientVersion   string
	ProtocolVersion int32
	AuthMethodName  string
	AuthData        []byte
}

// Subscribe: 1 topic, 2 subscription, 3 subType, 4 consumer_id,
// 5 request_id, 6 consumer_name, 7 priority_level, 8 durable (default
// true), 9 start_message_id, 10 metadata, 11 read_compacted, 12 schema,
// 13 initialPosition (0 latest, 1 earliest), 15 force_topic_creation
// (default true), 16 start_message_rollback_duration_sec, 17 keySharedMeta,
// 19 consumer_epoch.
type Subscribe struct {
	Topic              string
	Subscription       string
	SubType            SubType
	ConsumerID         uint64
	RequestID          uint64
	ConsumerName       string
	PriorityLevel      int32
	Durable            bool
	StartMessageID     *MessageID
	Schema             *Schema
	InitialEarliest    bool
	ForceTopicCreation bool
	RollbackSeconds    uint64
	KeyShared          *KeySharedMeta
	Metadata           []KeyValue
}

// KeySharedMeta: 1 keySharedMode (0 auto split, 1 sticky), 3 hashRanges
// (IntRange: 1 start, 2 end, inclusive), 4 allowOutOfOrderDelivery.
type KeySharedMeta struct {
	Sticky bool
	Ranges [][2]int32
}

// Producer: 1 topic, 2 producer_id, 3 request_id, 4 producer_name,
// 5 encrypted, 6 metadata, 7 schema, 8 epoch, 9 user_provided_producer_name,
// 10 producer_access_mode.
type Producer struct {
	Topic        string
	ProducerID   uint64
	RequestID    uint64
	ProducerName string
	Schema       *Schema
	Epoch        uint64
	AccessMode   int32
	Metadata     []KeyValue
	// InitialSubscription (field 13) is created with the topic if missing.
	InitialSubscription string
}

// Send: 1 producer_id, 2 sequence_id, 3 num_messages (default 1),
// 6 highest_sequence_id, 7 is_chunk, 8 marker.
type Send struct {
	ProducerID        uint64
	SequenceID        uint64
	NumMessages       int32
	HighestSequenceID uint64
	IsChunk           bool
	TxnLeast, TxnMost uint64
}

// Ack: 1 consumer_id, 2 ack_type (0 individual, 1 cumulative),
// 3 message_id (repeated), 6/7 txn ids, 8 request_id.
type Ack struct {
	ConsumerID uint64
	Cumulative bool
	MessageIDs []MessageID
	RequestID  *uint64
	Txn        bool
}

// Flow: 1 consumer_id, 2 messagePermits.
type Flow struct {
	ConsumerID uint64
	Permits    uint32
}

// Unsubscribe: 1 consumer_id, 2 request_id, 3 force.
type Unsubscribe struct {
	ConsumerID uint64
	RequestID  uint64
	Force      bool
}

// CloseProducer: 1 producer_id, 2 request_id.
type CloseProducer struct {
	ProducerID uint64
	RequestID  uint64
}

// CloseConsumer: 1 consumer_id, 2 request_id.
type CloseConsumer struct {
	ConsumerID uint64
	RequestID  uint64
}

// Redeliver (REDELIVER_UNACKNOWLEDGED_MESSAGES): 1 consumer_id,
// 2 message_ids (empty means all unacknowledged), 3 consumer_epoch.
type Redeliver struct {
	ConsumerID uint64
	MessageIDs []MessageID
}

// TopicRequest is PARTITIONED_METADATA and LOOKUP: 1 topic, 2 request_id
// (LOOKUP also 3 authoritative).
type TopicRequest struct {
	Topic     string
	RequestID uint64
}

// Seek: 1 consumer_id, 2 request_id, 3 message_id, 4 message_publish_time.
type Seek struct {
	ConsumerID  uint64
	RequestID   uint64
	MessageID   *MessageID
	PublishTime *uint64
}

// ConsumerRequest is GET_LAST_MESSAGE_ID (1 consumer_id, 2 request_id) and
// CONSUMER_STATS (1 request_id, 4 consumer_id).
type ConsumerRequest struct {
	ConsumerID uint64
	RequestID  uint64
}

// GetTopicsOfNamespace: 1 request_id, 2 namespace, 3 mode, 4 topics_pattern.
type GetTopicsOfNamespace struct {
	RequestID uint64
	Namespace string
	Mode      int32
	Pattern   string
}

// GetSchema: 1 request_id, 2 topic, 3 schema_version.
type GetSchema struct {
	RequestID uint64
	Topic     string
	Version   []byte
}

// GetOrCreateSchema: 1 request_id, 2 topic, 3 schema.
type GetOrCreateSchema struct {
	RequestID uint64
	Topic     string
	Schema    *Schema
}

// DecodeCommand decodes a BaseCommand (1 type, body in the field numbered
// like the type).
func DecodeCommand(b []byte) (*Command, error) {
	t, fs, err := parseBase(b)
	if err != nil {
		return nil, err
	}
	c := &Command{Type: t}
	if t == TypePing || t == TypePong {
		return c, nil
	}
	bf, err := fs.body(t)
	if err != nil {
		return nil, err
	}
	switch c.Type {
	case TypeConnect:
		if err := bf.need("CONNECT", 1); err != nil {
			return nil, err
		}
		c.Connect, err = decodeConnect(bf)
	case TypeAuthResponse:
		c.AuthResponse, err = decodeAuthResponse(bf)
	case TypeSubscribe:
		c.Subscribe, err = decodeSubscribe(bf)
	case TypeProducer:
		if err := bf.need("PRODUCER", 1, 2, 3); err != nil {
			return nil, err
		}
		p := &Producer{Topic: bf.str(1), ProducerID: bf.u64(2, 0), RequestID: bf.u64(3, 0),
			ProducerName: bf.str(4), Epoch: bf.u64(8, 0), AccessMode: bf.i32(10, 0),
			InitialSubscription: bf.str(13)}
		if sb, ok := bf.bytes(7); ok {
			if p.Schema, err = decodeSchema(sb); err != nil {
				return nil, err
			}
		}
		if p.Metadata, err = decodeKeyValues(bf.all(6)); err != nil {
			return nil, err
		}
		c.Producer = p
	case TypeSend:
		if err := bf.need("SEND", 1, 2); err != nil {
			return nil, err
		}
		c.Send = &Send{ProducerID: bf.u64(1, 0), SequenceID: bf.u64(2, 0), NumMessages: bf.i32(3, 1),
			HighestSequenceID: bf.u64(6, 0), IsChunk: bf.boolean(7, false), TxnLeast: bf.u64(4, 0), TxnMost: bf.u64(5, 0)}
	case TypeAck:
		if err := bf.need("ACK", 1, 2); err != nil {
			return nil, err
		}
		a := &Ack{ConsumerID: bf.u64(1, 0), Cumulative: bf.u64(2, 0) == 1,
			Txn: bf.u64(6, 0) != 0 || bf.u64(7, 0) != 0}
		if v, ok := bf.uint(8); ok {
			a.RequestID = &v
		}
		for _, mb := range bf.all(3) {
			id, err := decodeMessageID(mb)
			if err != nil {
				return nil, err
			}
			a.MessageIDs = append(a.MessageIDs, id)
		}
		c.Ack = a
	case TypeFlow:
		if err := bf.need("FLOW", 1, 2); err != nil {
			return nil, err
		}
		c.Flow = &Flow{ConsumerID: bf.u64(1, 0), Permits: uint32(bf.u64(2, 0))}
	case TypeUnsubscribe:
		if err := bf.need("UNSUBSCRIBE", 1, 2); err != nil {
			return nil, err
		}
		c.Unsubscribe = &Unsubscribe{ConsumerID: bf.u64(1, 0), RequestID: bf.u64(2, 0), Force: bf.boolean(3, false)}
	case TypeCloseProducer:
		if c.CloseProducer, err = decodeCloseProducer(bf); err != nil {
			return nil, err
		}
	case TypeCloseConsumer:
		if c.CloseConsumer, err = decodeCloseConsumer(bf); err != nil {
			return nil, err
		}
	case TypeRedeliverUnacked:
		if err := bf.need("REDELIVER_UNACKNOWLEDGED_MESSAGES", 1); err != nil {
			return nil, err
		}
		r := &Redeliver{ConsumerID: bf.u64(1, 0)}
		for _, mb := range bf.all(2) {
			id, err := decodeMessageID(mb)
			if err != nil {
				return nil, err
			}
			r.MessageIDs = append(r.MessageIDs, id)
		}
		c.Redeliver = r
	case TypePartitionedMetadata, TypeLookup:
		if err := bf.need("topic request", 1, 2); err != nil {
			return nil, err
		}
		tr := &TopicRequest{Topic: bf.str(1), RequestID: bf.u64(2, 0)}
		if c.Type == TypeLookup {
			c.Lookup = tr
		} else {
			c.PartitionedMetadata = tr
		}
	case TypeSeek:
		if err := bf.need("SEEK", 1, 2); err != nil {
			return nil, err
		}
		s := &Seek{ConsumerID: bf.u64(1, 0), RequestID: bf.u64(2, 0)}
		if mb, ok := bf.bytes(3); ok {
			id, err := decodeMessageID(mb)
			if err != nil {
				return nil, err
			}
			s.MessageID = &id
		}
		if v, ok := bf.uint(4); ok {
			s.PublishTime = &v
		}
		if s.MessageID == nil && s.PublishTime == nil {
			return nil, fmt.Errorf("%w: SEEK without target", ErrMalformed)
		}
		c.Seek = s
	case TypeGetLastMessageID:
		if err := bf.need("GET_LAST_MESSAGE_ID", 1, 2); err != nil {
			return nil, err
		}
		c.GetLastMessageID = &ConsumerRequest{ConsumerID: bf.u64(1, 0), RequestID: bf.u64(2, 0)}
	case TypeConsumerStats:
		if err := bf.need("CONSUMER_STATS", 1, 4); err != nil {
			return nil, err
		}
		c.ConsumerStats = &ConsumerRequest{RequestID: bf.u64(1, 0), ConsumerID: bf.u64(4, 0)}
	case TypeGetTopicsOfNamespace:
		if err := bf.need("GET_TOPICS_OF_NAMESPACE", 1, 2); err != nil {
			return nil, err
		}
		c.GetTopicsOfNamespace = &GetTopicsOfNamespace{RequestID: bf.u64(1, 0), Namespace: bf.str(2),
			Mode: bf.i32(3, 0), Pattern: bf.str(4)}
	case TypeGetSchema:
		if err := bf.need("GET_SCHEMA", 1, 2); err != nil {
			return nil, err
		}
		v, _ := bf.bytes(3)
		c.GetSchema = &GetSchema{RequestID: bf.u64(1, 0), Topic: bf.str(2), Version: v}
	case TypeGetOrCreateSchema:
		if err := bf.need("GET_OR_CREATE_SCHEMA", 1, 2, 3); err != nil {
			return nil, err
		}
		sb, _ := bf.bytes(3)
		s, err := decodeSchema(sb)
		if err != nil {
			return nil, err
		}
		c.GetOrCreateSchema = &GetOrCreateSchema{RequestID: bf.u64(1, 0), Topic: bf.str(2), Schema: s}
	default:
		if v, ok := bf.uint(1); ok {
			c.RequestID = &v
		}
	}
	if err != nil {
		return nil, err
	}
	return c, nil
}

// decodeCloseProducer decodes CLOSE_PRODUCER, which clients and brokers
// both send.
func decodeCloseProducer(bf fields) (*CloseProducer, error) {
	if err := bf.need("CLOSE_PRODUCER", 1, 2); err != nil {
		return nil, err
	}
	return &CloseProducer{ProducerID: bf.u64(1, 0), RequestID: bf.u64(2, 0)}, nil
}

// decodeCloseConsumer decodes CLOSE_CONSUMER, which clients and brokers
// both send.
func decodeCloseConsumer(bf fields) (*CloseConsumer, error) {
	if err := bf.need("CLOSE_CONSUMER", 1, 2); err != nil {
		return nil, err
	}
	return &CloseConsumer{ConsumerID: bf.u64(1, 0), RequestID: bf.u64(2, 0)}, nil
}

func decodeConnect(bf fields) (*Connect, error) {
	data, _ := bf.bytes(3)
	c := &Connect{ClientVersion: bf.str(1), ProtocolVersion: bf.i32(4, 0), AuthMethodName: bf.str(5),
		HasAuthMethodName: bf.has(5), AuthMethod: bf.i32(2, 0), AuthData: append([]byte(nil), data...)}
	if fb, ok := bf.bytes(10); ok {
		ff, err := parse(fb)
		if err != nil {
			return nil, err
		}
		c.SupportsAuthRefresh = ff.boolean(1, false)
	}
	return c, nil
}

func decodeAuthResponse(bf fields) (*AuthResponse, error) {
	rb, ok := bf.bytes(2)
	if !ok {
		return nil, fmt.Errorf("%w: AUTH_RESPONSE without response", ErrMalformed)
	}
	rf, err := parse(rb)
	if err != nil {
		return nil, err
	}
	if err := rf.need("AUTH_RESPONSE response", 1, 2); err != nil {
		return nil, err
	}
	data, _ := rf.bytes(2)
	return &AuthResponse{ClientVersion: bf.str(1), ProtocolVersion: bf.i32(3, 0), AuthMethodName: rf.str(1),
		AuthData: append([]byte(nil), data...)}, nil
}

func decodeSubscribe(bf fields) (*Subscribe, error) {
	if err := bf.need("SUBSCRIBE", 1, 2, 3, 4, 5); err != nil {
		return nil, err
	}
	s := &Subscribe{
		Topic: bf.str(1), Subscription: bf.str(2), SubType: SubType(bf.i32(3, 0)),
		ConsumerID: bf.u64(4, 0), RequestID: bf.u64(5, 0), ConsumerName: bf.str(6),
		PriorityLevel: bf.i32(7, 0), Durable: bf.boolean(8, true),
		InitialEarliest: bf.u64(13, 0) == 1, ForceTopicCreation: bf.boolean(15, true),
		RollbackSeconds: bf.u64(16, 0),
	}
	if s.SubType < SubExclusive || s.SubType > SubKeyShared {
		return nil, fmt.Errorf("%w: SUBSCRIBE: unknown subType %d", ErrMalformed, s.SubType)
	}
	if mb, ok := bf.bytes(9); ok {
		id, err := decodeMessageID(mb)
		if err != nil {
			return nil, err
		}
		s.StartMessageID = &id
	}
	md, err := decodeKeyValues(bf.all(10))
	if err != nil {
		return nil, err
	}
	s.Metadata = md
	if sb, ok := bf.bytes(12); ok {
		sc, err := decodeSchema(sb)
		if err != nil {
			return nil, err
		}
		s.Schema = sc
	}
	if kb, ok := bf.bytes(17); ok {
		kf, err := parse(kb)
		if err != nil {
			return nil, err
		}
		k := &KeySharedMeta{Sticky: kf.u64(1, 0) == 1}
		for _, rb := range kf.all(3) {
			rf, err := parse(rb)
			if err != nil {
				return nil, err
			}
			k.Ranges = append(k.Ranges, [2]int32{rf.i32(1, 0), rf.i32(2, 0)})
		}
		s.KeyShared = k
	}
	return s, nil
}
