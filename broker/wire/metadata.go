package wire

import (
	"encoding/binary"
	"fmt"
)

// Metadata is the part of MessageMetadata the broker looks at:
// 1 producer_name, 2 sequence_id, 3 publish_time, 5 replicated_from,
// 6 partition_key, 7 replicate_to, 11 num_messages_in_batch,
// 18 ordering_key, 19 deliver_at_time, 20 marker_type,
// 24 highest_sequence_id.
type Metadata struct {
	ProducerName string
	SequenceID   uint64
	PublishTime  uint64
	PartitionKey string
	OrderingKey  []byte
	// NumMessages is num_messages_in_batch, 1 when absent.
	NumMessages int32
	// Batched reports that num_messages_in_batch was present.
	Batched bool
	// DeliverAt is deliver_at_time (ms since the epoch), 0 when unset.
	DeliverAt int64
	// ReplicatedFrom names the cluster the entry was replicated from (""
	// for an entry produced in this cluster).
	ReplicatedFrom string
	// ReplicateTo restricts replication to these clusters (empty = every
	// replication cluster of the namespace).
	ReplicateTo []string
	// Marker is set when marker_type is present (replicated-subscription
	// and transaction markers, never replicated).
	Marker bool
	// HighestSequenceID is highest_sequence_id, 0 when absent.
	HighestSequenceID uint64
}

// Key is the routing key Key_Shared dispatch hashes: the ordering key if
// set, else the partition key.
func (m *Metadata) Key() []byte {
	if len(m.OrderingKey) > 0 {
		return m.OrderingKey
	}
	return []byte(m.PartitionKey)
}

// ParseMetadata decodes the metadata size and MessageMetadata at the start
// of p (the part of a SEND after magic and checksum).
func ParseMetadata(p []byte) (*Metadata, error) {
	md, _, err := splitMetadata(p)
	if err != nil {
		return nil, err
	}
	fs, err := parse(md)
	if err != nil {
		return nil, err
	}
	if err := fs.need("MessageMetadata", 1, 2, 3); err != nil {
		return nil, err
	}
	ok, _ := fs.bytes(18)
	m := &Metadata{
		ProducerName:      fs.str(1),
		SequenceID:        fs.u64(2, 0),
		PublishTime:       fs.u64(3, 0),
		PartitionKey:      fs.str(6),
		OrderingKey:       ok,
		NumMessages:       fs.i32(11, 1),
		Batched:           fs.has(11),
		DeliverAt:         fs.i64(19, 0),
		ReplicatedFrom:    fs.str(5),
		Marker:            fs.has(20),
		HighestSequenceID: fs.u64(24, 0),
	}
	for _, c := range fs.all(7) {
		m.ReplicateTo = append(m.ReplicateTo, string(c))
	}
	if m.NumMessages < 1 {
		m.NumMessages = 1
	}
	return m, nil
}

// splitMetadata returns the MessageMetadata bytes and what follows them.
func splitMetadata(p []byte) (md, rest []byte, err error) {
	if len(p) < 4 {
		return nil, nil, fmt.Errorf("%w: missing metadata size", ErrMalformed)
	}
	n := binary.BigEndian.Uint32(p)
	if uint64(n) > uint64(len(p)-4) {
		return nil, nil, fmt.Errorf("%w: metadata size %d exceeds frame", ErrMalformed, n)
	}
	return p[4 : 4+n], p[4+n:], nil
}

// WithReplicatedFrom returns a copy of payload (metadata size, metadata,
// payload, as stored) whose metadata also carries replicated_from =
// cluster. Every other byte of the metadata and the payload is kept; the
// field is appended, which protobuf decoders accept in any position. The
// caller must not pass an entry that already has replicated_from.
func WithReplicatedFrom(payload []byte, cluster string) ([]byte, error) {
	md, rest, err := splitMetadata(payload)
	if err != nil {
		return nil, err
	}
	var e enc
	e.str(5, cluster)
	out := make([]byte, 0, len(payload)+len(e))
	out = binary.BigEndian.AppendUint32(out, uint32(len(md)+len(e)))
	out = append(out, md...)
	out = append(out, e...)
	return append(out, rest...), nil
}

// NewPayload builds a stored-form payload (metadata size, metadata, body)
// for a single, uncompressed message with the given producer name,
// sequence id and publish time (ms).
func NewPayload(producerName string, seq, publishMs uint64, body []byte) []byte {
	var e enc
	e.str(1, producerName)
	e.uint(2, seq)
	e.uint(3, publishMs)
	out := binary.BigEndian.AppendUint32(nil, uint32(len(e)))
	out = append(out, e...)
	return append(out, body...)
}

// Body returns what follows the metadata in a stored-form payload.
func Body(payload []byte) ([]byte, error) {
	_, rest, err := splitMetadata(payload)
	return rest, err
}
