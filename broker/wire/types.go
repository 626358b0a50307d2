package wire

import (
	"fmt"
)

// Type is BaseCommand.type: which command a frame carries. The same number
// is the BaseCommand field holding that command's body.
type Type int32

// Command types the broker knows (BaseCommand.Type).
const (
	TypeConnect                  Type = 2
	TypeConnected                Type = 3
	TypeSubscribe                Type = 4
	TypeProducer                 Type = 5
	TypeSend                     Type = 6
	TypeSendReceipt              Type = 7
	TypeSendError                Type = 8
	TypeMessage                  Type = 9
	TypeAck                      Type = 10
	TypeFlow                     Type = 11
	TypeUnsubscribe              Type = 12
	TypeSuccess                  Type = 13
	TypeError                    Type = 14
	TypeCloseProducer            Type = 15
	TypeCloseConsumer            Type = 16
	TypeProducerSuccess          Type = 17
	TypePing                     Type = 18
	TypePong                     Type = 19
	TypeRedeliverUnacked         Type = 20
	TypePartitionedMetadata      Type = 21
	TypePartitionedMetadataResp  Type = 22
	TypeLookup                   Type = 23
	TypeLookupResponse           Type = 24
	TypeConsumerStats            Type = 25
	TypeConsumerStatsResponse    Type = 26
	TypeReachedEndOfTopic        Type = 27
	TypeSeek                     Type = 28
	TypeGetLastMessageID         Type = 29
	TypeGetLastMessageIDResponse Type = 30
	TypeActiveConsumerChange     Type = 31
	TypeGetTopicsOfNamespace     Type = 32
	TypeGetTopicsOfNamespaceResp Type = 33
	TypeGetSchema                Type = 34
	TypeGetSchemaResponse        Type = 35
	TypeAuthChallenge            Type = 36
	TypeAuthResponse             Type = 37
	TypeAckResponse              Type = 38
	TypeGetOrCreateSchema        Type = 39
	TypeGetOrCreateSchemaResp    Type = 40
	TypeNewTxn                   Type = 50
	TypeTcClientConnectRequest   Type = 62
	TypeTcClientConnectResponse  Type = 63
	TypeWatchTopicList           Type = 64
	TypeWatchTopicListClose      Type = 67
)

// ServerError codes sent in ERROR, SEND_ERROR and response error fields.
type ServerError int32

// Server error codes used by the broker.
const (
	ErrUnknown              ServerError = 0
	ErrMetadata             ServerError = 1
	ErrPersistence          ServerError = 2
	ErrAuthentication       ServerError = 3
	ErrAuthorization        ServerError = 4
	ErrConsumerBusy         ServerError = 5
	ErrServiceNotReady      ServerError = 6
	ErrChecksumCode         ServerError = 9
	ErrUnsupportedVersion   ServerError = 10
	ErrTopicNotFound        ServerError = 11
	ErrTopicTerminated      ServerError = 15
	ErrSubscriptionNotFound ServerError = 12
	ErrConsumerNotFound     ServerError = 13
	ErrProducerBusy         ServerError = 16
	ErrInvalidTopicName     ServerError = 17
	ErrIncompatibleSchema   ServerError = 18
	ErrNotAllowed           ServerError = 22
	ErrProducerFenced       ServerError = 25
)

// SubType is CommandSubscribe.SubType.
type SubType int32

// Subscription types.
const (
	SubExclusive SubType = 0
	SubShared    SubType = 1
	SubFailover  SubType = 2
	SubKeyShared SubType = 3
)

func (s SubType) String() string {
	switch s {
	case SubExclusive:
		return "Exclusive"
	case SubShared:
		return "Shared"
	case SubFailover:
		return "Failover"
	case SubKeyShared:
		return "Key_Shared"
	}
	return fmt.Sprintf("SubType(%d)", int32(s))
}

// MessageID is MessageIdData: fields 1 ledgerId, 2 entryId, 3 partition
// (default -1), 4 batch_index (default -1), 5 ack_set (repeated int64),
// 6 batch_size.
type MessageID struct {
	LedgerID   int64
	EntryID    int64
	Partition  int32
	BatchIndex int32
	AckSet     []int64
	BatchSize  int32
}

func decodeMessageID(b []byte) (MessageID, error) {
	fs, err := parse(b)
	if err != nil {
		return MessageID{}, err
	}
	if err := fs.need("MessageIdData", 1, 2); err != nil {
		return MessageID{}, err
	}
	id := MessageID{
		LedgerID:   fs.i64(1, 0),
		EntryID:    fs.i64(2, 0),
		Partition:  fs.i32(3, -1),
		BatchIndex: fs.i32(4, -1),
		BatchSize:  fs.i32(6, 0),
	}
	set, err := fs.varints(5)
	if err != nil {
		return MessageID{}, err
	}
	for _, v := range set {
		id.AckSet = append(id.AckSet, int64(v))
	}
	return id, nil
}

func (id MessageID) encode() enc {
	var e enc
	e.uint(1, uint64(id.LedgerID))
	e.uint(2, uint64(id.EntryID))
	if id.Partition >= 0 {
		e.int(3, int64(id.Partition))
	}
	if id.BatchIndex >= 0 {
		e.int(4, int64(id.BatchIndex))
	}
	for _, v := range id.AckSet {
		e.int(5, v)
	}
	if id.BatchSize > 0 {
		e.int(6, int64(id.BatchSize))
	}
	return e
}

// KeyValue is fields 1 key, 2 value.
type KeyValue struct{ Key, Value string }

func decodeKeyValues(bs [][]byte) ([]KeyValue, error) {
	var out []KeyValue
	for _, b := range bs {
		fs, err := parse(b)
		if err != nil {
			return nil, err
		}
		out = append(out, KeyValue{Key: fs.str(1), Value: fs.str(2)})
	}
	return out, nil
}

// Schema is fields 1 name, 3 schema_data, 4 type, 5 properties.
type Schema struct {
	Name       string
	Data       []byte
	Type       int32
	Properties []KeyValue
}

func decodeSchema(b []byte) (*Schema, error) {
	fs, err := parse(b)
	if err != nil {
		return nil, err
	}
	props, err := decodeKeyValues(fs.all(5))
	if err != nil {
		return nil, err
	}
	data, _ := fs.bytes(3)
	return &Schema{Name: fs.str(1), Data: append([]byte(nil), data...), Type: fs.i32(4, 0), Properties: props}, nil
}

func (s *Schema) encode() enc {
	var e enc
	e.str(1, s.Name)
	e.bytes(3, s.Data)
	e.int(4, int64(s.Type))
	for _, kv := range s.Properties {
		var p enc
		p.str(1, kv.Key)
		p.str(2, kv.Value)
		e.msg(5, p)
	}
	return e
}
