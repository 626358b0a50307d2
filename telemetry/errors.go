package telemetry

import "errors"

// Sentinel errors.
var (
	// ErrProtocol: OTEL_EXPORTER_OTLP_PROTOCOL names a protocol meshfed
	// does not export with (use grpc or http/protobuf).
	ErrProtocol = errors.New("unsupported OTLP protocol: use grpc or http/protobuf")
	// ErrLogFormat: --log-format is neither json nor text.
	ErrLogFormat = errors.New("unknown log format: use json or text")
)
