package agent

import (
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/propagation"
)

// The agent's telemetry. Per-instance counters carry the labels tenant,
// namespace, mesh, function and instance; Pulsar Functions' names are used
// where one exists.
var (
	meter      = otel.Meter("github.com/meshfed/meshfed/agent")
	tracer     = otel.Tracer("github.com/meshfed/meshfed/agent")
	propagator = propagation.TraceContext{}

	mReceived, _  = meter.Int64Counter("pulsar_function_received", metric.WithDescription("Messages received by function instances."))
	mProcessed, _ = meter.Int64Counter("pulsar_function_processed_successfully", metric.WithDescription("Messages processed successfully."))
	mUserExc, _   = meter.Int64Counter("pulsar_function_user_exceptions", metric.WithDescription("Messages the function failed on."))
	mSystemExc, _ = meter.Int64Counter("pulsar_function_system_exceptions", metric.WithDescription("Messages that failed outside the function (sends, state)."))
	mLatency, _   = meter.Float64Histogram("pulsar_function_process_latency_ms", metric.WithDescription("Time the function took per message."),
		metric.WithExplicitBucketBoundaries(0.01, 0.05, 0.1, 0.5, 1, 5, 10, 50, 100, 500, 1000))

	// mDeduplicated counts effectively-once outputs not written because the
	// output topic already held them; attribute "by" is "skip" (at or
	// below the producer's last sequence id, never sent) or "broker" (sent
	// and answered as a duplicate).
	mDeduplicated, _ = meter.Int64Counter("meshfed_function_deduplicated",
		metric.WithDescription("Effectively-once outputs not written because the output topic already held them (by=skip: at or below the producer's last sequence id; by=broker: answered as a duplicate)."))
	// mStateApplied counts effectively-once inputs redelivered after their
	// state changes were committed: the function runs again, its changes
	// are not applied twice.
	mStateApplied, _ = meter.Int64Counter("meshfed_function_state_already_applied",
		metric.WithDescription("Effectively-once inputs redelivered after their state changes were committed (their acknowledgement was lost in a crash): processed again without applying their state changes twice."))
	// mUnproven counts effectively-once inputs processed at-least-once
	// because their identity could not be proven; attribute "reason".
	mUnproven, _ = meter.Int64Counter("meshfed_function_unproven",
		metric.WithDescription("Effectively-once inputs processed at-least-once because their identity could not be established (attribute reason)."))
	// mLookBacks counts readers seeked by time to recover a producer's
	// earlier messages with the same publish time.
	mLookBacks, _ = meter.Int64Counter("meshfed_function_look_backs",
		metric.WithDescription("Look-backs: readers seeked by publish time to recover a producer's earlier messages with the same publish time."))
)
