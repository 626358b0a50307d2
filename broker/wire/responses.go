package wire

import "google.golang.org/protobuf/encoding/protowire"

// base wraps a command body into a BaseCommand.
func base(t Type, body enc) []byte {
	var e enc
	e.uint(1, uint64(t))
	e.msg(protowire.Number(t), body)
	return e
}

// Connected: 1 server_version, 2 protocol_version, 3 max_message_size.
func Connected(serverVersion string, protocolVersion, maxMessageSize int32) []byte {
	var e enc
	e.str(1, serverVersion)
	e.int(2, int64(protocolVersion))
	e.int(3, int64(maxMessageSize))
	return base(TypeConnected, e)
}

// AuthChallenge (AUTH_CHALLENGE): 1 server_version, 2 challenge (AuthData:
// 1 auth_method_name, 2 auth_data), 3 protocol_version.
func AuthChallenge(serverVersion string, protocolVersion int32, method string, data []byte) []byte {
	return authExchange(TypeAuthChallenge, serverVersion, protocolVersion, method, data)
}

// authExchange encodes AUTH_CHALLENGE and AUTH_RESPONSE, which share their
// fields: 1 version, 2 AuthData (1 auth_method_name, 2 auth_data),
// 3 protocol_version.
func authExchange(t Type, version string, protocolVersion int32, method string, data []byte) []byte {
	var e, ad enc
	e.str(1, version)
	ad.str(1, method)
	ad.bytes(2, data)
	e.msg(2, ad)
	e.int(3, int64(protocolVersion))
	return base(t, e)
}

// Ping is an empty PING.
func Ping() []byte { return base(TypePing, nil) }

// Pong is an empty PONG.
func Pong() []byte { return base(TypePong, nil) }

// Success: 1 request_id, 2 schema.
func Success(requestID uint64, schema *Schema) []byte {
	var e enc
	e.uint(1, requestID)
	if schema != nil {
		e.msg(2, schema.encode())
	}
	return base(TypeSuccess, e)
}

// Error: 1 request_id, 2 error, 3 message.
func Error(requestID uint64, code ServerError, msg string) []byte {
	return requestError(TypeError, requestID, code, msg)
}

// requestError encodes a failed answer whose first fields are 1 request_id,
// 2 error, 3 message (ERROR, GET_SCHEMA_RESPONSE).
func requestError(t Type, requestID uint64, code ServerError, msg string) []byte {
	var e enc
	e.uint(1, requestID)
	e.int(2, int64(code))
	e.str(3, msg)
	return base(t, e)
}

// ProducerSuccess: 1 request_id, 2 producer_name, 3 last_sequence_id,
// 4 schema_version, 6 producer_ready.
func ProducerSuccess(requestID uint64, name string, lastSeq int64, schemaVersion []byte) []byte {
	return producerSuccess(requestID, name, lastSeq, schemaVersion, true)
}

// ProducerWaiting is a PRODUCER_SUCCESS with producer_ready false: the
// producer waits for exclusive access and a ready one follows.
func ProducerWaiting(requestID uint64, name string) []byte {
	return producerSuccess(requestID, name, -1, nil, false)
}

func producerSuccess(requestID uint64, name string, lastSeq int64, schemaVersion []byte, ready bool) []byte {
	var e enc
	e.uint(1, requestID)
	e.str(2, name)
	e.int(3, lastSeq)
	if schemaVersion != nil {
		e.bytes(4, schemaVersion)
	}
	e.boolean(6, ready)
	return base(TypeProducerSuccess, e)
}

// SendReceipt: 1 producer_id, 2 sequence_id, 3 message_id,
// 4 highest_sequence_id.
func SendReceipt(producerID, seq, highestSeq uint64, id MessageID) []byte {
	var e enc
	e.uint(1, producerID)
	e.uint(2, seq)
	e.msg(3, id.encode())
	e.uint(4, highestSeq)
	return base(TypeSendReceipt, e)
}

// SendError: 1 producer_id, 2 sequence_id, 3 error, 4 message.
func SendError(producerID, seq uint64, code ServerError, msg string) []byte {
	var e enc
	e.uint(1, producerID)
	e.uint(2, seq)
	e.int(3, int64(code))
	e.str(4, msg)
	return base(TypeSendError, e)
}

// Message: 1 consumer_id, 2 message_id, 3 redelivery_count, 4 ack_set.
func Message(consumerID uint64, id MessageID, redeliveryCount uint32, ackSet []int64) []byte {
	var e enc
	e.uint(1, consumerID)
	e.msg(2, id.encode())
	if redeliveryCount > 0 {
		e.uint(3, uint64(redeliveryCount))
	}
	for _, v := range ackSet {
		e.int(4, v)
	}
	return base(TypeMessage, e)
}

// PartitionedMetadataResponse: 1 partitions, 2 request_id, 3 response
// (0 success, 1 failed), 4 error, 5 message.
func PartitionedMetadataResponse(requestID uint64, partitions uint32) []byte {
	var e enc
	e.uint(1, uint64(partitions))
	e.uint(2, requestID)
	e.uint(3, 0)
	return base(TypePartitionedMetadataResp, e)
}

// PartitionedMetadataError is a failed PARTITIONED_METADATA_RESPONSE.
func PartitionedMetadataError(requestID uint64, code ServerError, msg string) []byte {
	var e enc
	e.uint(2, requestID)
	e.uint(3, 1)
	e.int(4, int64(code))
	e.str(5, msg)
	return base(TypePartitionedMetadataResp, e)
}

// LookupResponse: 1 brokerServiceUrl, 2 brokerServiceUrlTls, 3 response
// (1 connect), 4 request_id, 5 authoritative. Empty URLs are left out.
func LookupResponse(requestID uint64, serviceURL, serviceURLTLS string) []byte {
	var e enc
	if serviceURL != "" {
		e.str(1, serviceURL)
	}
	if serviceURLTLS != "" {
		e.str(2, serviceURLTLS)
	}
	e.uint(3, 1)
	e.uint(4, requestID)
	e.boolean(5, true)
	return base(TypeLookupResponse, e)
}

// LookupError is a failed LOOKUP_RESPONSE: 3 response (2 failed), 6 error,
// 7 message.
func LookupError(requestID uint64, code ServerError, msg string) []byte {
	var e enc
	e.uint(3, 2)
	e.uint(4, requestID)
	e.int(6, int64(code))
	e.str(7, msg)
	return base(TypeLookupResponse, e)
}

// CloseProducerCmd asks the client to drop a producer: 1 producer_id,
// 2 request_id.
func CloseProducerCmd(producerID, requestID uint64) []byte {
	return closeCmd(TypeCloseProducer, producerID, requestID)
}

// CloseConsumerCmd asks the client to drop (and usually re-create) a
// consumer: 1 consumer_id, 2 request_id.
func CloseConsumerCmd(consumerID, requestID uint64) []byte {
	return closeCmd(TypeCloseConsumer, consumerID, requestID)
}

// closeCmd encodes CLOSE_PRODUCER and CLOSE_CONSUMER: 1 producer or
// consumer id, 2 request_id.
func closeCmd(t Type, id, requestID uint64) []byte {
	var e enc
	e.uint(1, id)
	e.uint(2, requestID)
	return base(t, e)
}

// ActiveConsumerChange: 1 consumer_id, 2 is_active.
func ActiveConsumerChange(consumerID uint64, active bool) []byte {
	var e enc
	e.uint(1, consumerID)
	e.boolean(2, active)
	return base(TypeActiveConsumerChange, e)
}

// ReachedEndOfTopic: 1 consumer_id.
func ReachedEndOfTopic(consumerID uint64) []byte {
	var e enc
	e.uint(1, consumerID)
	return base(TypeReachedEndOfTopic, e)
}

// GetLastMessageIDResponse: 1 last_message_id, 2 request_id,
// 3 consumer_mark_delete_position.
func GetLastMessageIDResponse(requestID uint64, last MessageID, markDelete *MessageID) []byte {
	var e enc
	e.msg(1, last.encode())
	e.uint(2, requestID)
	if markDelete != nil {
		e.msg(3, markDelete.encode())
	}
	return base(TypeGetLastMessageIDResponse, e)
}

// TopicsOfNamespaceResponse: 1 request_id, 2 topics, 3 filtered,
// 5 changed.
func TopicsOfNamespaceResponse(requestID uint64, topics []string) []byte {
	var e enc
	e.uint(1, requestID)
	for _, t := range topics {
		e.str(2, t)
	}
	e.boolean(3, false)
	e.boolean(5, true)
	return base(TypeGetTopicsOfNamespaceResp, e)
}

// GetSchemaResponse: 1 request_id, 2 error_code, 3 error_message,
// 4 schema, 5 schema_version.
func GetSchemaResponse(requestID uint64, s *Schema, version []byte) []byte {
	var e enc
	e.uint(1, requestID)
	e.msg(4, s.encode())
	e.bytes(5, version)
	return base(TypeGetSchemaResponse, e)
}

// GetSchemaError is a GET_SCHEMA_RESPONSE carrying an error.
func GetSchemaError(requestID uint64, code ServerError, msg string) []byte {
	return requestError(TypeGetSchemaResponse, requestID, code, msg)
}

// GetOrCreateSchemaResponse: 1 request_id, 2 error_code, 3 error_message,
// 4 schema_version.
func GetOrCreateSchemaResponse(requestID uint64, version []byte) []byte {
	var e enc
	e.uint(1, requestID)
	e.bytes(4, version)
	return base(TypeGetOrCreateSchemaResp, e)
}

// AckResponse: 1 consumer_id, 4 error, 5 message, 6 request_id.
func AckResponse(consumerID, requestID uint64, code *ServerError, msg string) []byte {
	var e enc
	e.uint(1, consumerID)
	if code != nil {
		e.int(4, int64(*code))
		e.str(5, msg)
	}
	e.uint(6, requestID)
	return base(TypeAckResponse, e)
}

// ConsumerStatsResponse: 1 request_id, 7 consumerName, 8 availablePermits,
// 9 unackedMessages, 13 type, 15 msgBacklog.
func ConsumerStatsResponse(requestID uint64, name string, permits, unacked uint64, subType string, backlog uint64) []byte {
	var e enc
	e.uint(1, requestID)
	e.str(7, name)
	e.uint(8, permits)
	e.uint(9, unacked)
	e.str(13, subType)
	e.uint(15, backlog)
	return base(TypeConsumerStatsResponse, e)
}

// TcClientConnectError answers a transaction-coordinator connect with an
// error: 1 request_id, 2 error, 3 message.
func TcClientConnectError(requestID uint64, msg string) []byte {
	var e enc
	e.uint(1, requestID)
	e.int(2, int64(ErrNotAllowed))
	e.str(3, msg)
	return base(TypeTcClientConnectResponse, e)
}
