#!/usr/bin/env bash
# Runs pulsar-client-go's own integration tests against `meshfed broker`.
#
# Copies github.com/apache/pulsar-client-go (the version pinned in go.mod)
# from the module cache to a temporary directory, starts meshfed broker on
# localhost:6650 (admin on localhost:8080) with a fresh data directory, and
# runs the selected tests of its ./pulsar package. The tests use those fixed
# ports, so nothing else may listen there.
#
# Usage: scripts/client-compat.sh [go test -run regexp]
#   TESTS   overrides the test list (a -run regexp); default: COMPAT_TESTS below
#   KEEP=1  keeps the temporary directory (broker log: $WORK/broker.log)
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD
VERSION=$(go list -m -f '{{.Version}}' github.com/apache/pulsar-client-go)
SRC=$(go env GOMODCACHE)/github.com/apache/pulsar-client-go@$VERSION

# The tests that need no TLS, authentication, transactions, chunking,
# encryption, a second cluster or broker internals this broker does not have.
COMPAT_TESTS=(
  # producing
  TestProducerConsumer TestSimpleProducer TestProducerAsyncSend TestProducerFlushDisableBatching
  TestProducerCompression TestProducerLastSequenceID TestEventTime TestFlushInProducer
  TestConcurrentFlushInProducer TestFlushInPartitionedProducer TestProducerReturnsErrorOnFlushWhenClosed
  TestRoundRobinRouterPartitionedProducer TestMessageRouter TestMessageSingleRouter
  TestProducerDuplicateNameOnSameTopic TestProducerMetadata TestBatchMessageFlushing
  TestMaxBatchSize TestBatchingDisabled TestMaxMessageSize TestSendTimeout TestSendContextExpired
  TestProducerSendAfterClose TestExactlyOnceWithProducerNameSpecified TestExclusiveProducer
  TestBatchSendMessagesWithMetadata TestNoBatchSendMessagesWithMetadata TestProducerSendWithContext
  TestFailPendingMessageWithClose TestSendConcurrently TestProducerName TestProducerWithInterceptors
  TestSendAsyncWithContextCancel TestMemLimitRejectProducerMessages TestMemLimitContextCancel
  # consuming, subscription types, acks
  TestBatchMessageReceive TestConsumerSubscriptionEarliestPosition TestConsumerKeyShared
  TestPartitionTopicsConsumerPubSub TestPartitionTopic_ActiveConsumerChanged TestConsumerReceiveTimeout
  TestConsumerShared TestConsumerEventTime TestConsumerWithoutEventTime TestConsumerFlow TestConsumerAck
  TestConsumerNoBatchCumulativeAck TestConsumerBatchCumulativeAck TestConsumerNack
  TestConsumerCompression TestConsumerMultiCompressions TestConsumerCompressionWithBatches
  TestConsumerMetadata TestConsumerReceiveErrAfterClose TestAckWithResponse TestCumulativeAckWithResponse
  TestGetDeliveryCount TestConsumerNegativeReceiverQueueSize TestConsumerWithInterceptors TestConsumerName
  TestKeyBasedBatchProducerConsumerKeyShared TestOrderingOfKeyBasedBatchProducerConsumerKeyShared
  TestConsumerKeySharedWithOrderingKey TestAvailablePermitsLeak TestAckWithMessageID TestBatchIndexAck
  TestConsumerNonDurable TestConsumerBatchIndexAckDisabled TestConsumerAckCumulativeOnSharedSubShouldFailed
  TestConsumerUnSubscribe TestConsumerForceUnSubscribe TestConsumerGetLastMessageIDs
  TestPartitionConsumerGetLastMessageIDs TestLookupConsumer TestAckIDList TestAckResponseNotBlocked
  TestDLQ TestDLQWithProducerOptions TestDLQMultiTopics TestRLQ TestRLQMultiTopics TestNegativeAckPrecisionBitCnt
  TestConsumerWithAutoScaledQueueReceive TestConsumerMemoryLimit TestMultiConsumerMemoryLimit
  TestMultiTopicConsumerReceive TestMultiTopicConsumerUnsubscribe TestMultiTopicConsumerForceUnsubscribe
  TestMultiTopicGetLastMessageIDs TestMultiTopicAckIDList TestRegexConsumerDiscover TestRegexConsumer
  # seek
  TestConsumerSeek TestConsumerSeekByTime TestConsumerSeekByTimeOnPartitionedTopic
  # readers
  TestReader TestReaderOnPartitionedTopic TestReaderOnSpecificMessage TestReaderOnSpecificMessageWithBatching
  TestReaderOnLatestWithBatching TestReaderHasNextAgainstEmptyTopic TestReaderHasNext
  TestReaderOnSpecificMessageWithCustomMessageID TestReaderSeek TestReaderLatestInclusiveHasNext
  TestReaderWithSchema TestReaderGetLastMessageID TestReaderGetLastMessageIDOnMultiTopics
  TestReaderWithSeekByID TestReaderWithSeekByTime TestReaderReadFromLatest TestReaderEmptyPayloadNonemptyPropsNonBatch
  # zero queue consumers
  TestNormalZeroQueueConsumer TestMultipleConsumer TestPartitionZeroQueueConsumer TestSpecifiedPartitionZeroQueueConsumer
  TestZeroQueueConsumerGetLastMessageIDs TestZeroQueueConsumer_Chan TestZeroQueueConsumer_AckCumulativeConsumer
  TestZeroQueueConsumer_Nack TestZeroQueueConsumer_Seek TestZeroQueueConsumer_SeekByTime
  # client, topics, schemas
  TestClient TestTopicPartitions TestNamespaceTopics TestNamespaceTopicsNamespaceDoesNotExit
  TestBytesSchema TestJsonSchema TestProtoSchema TestProtoNativeSchema TestAvroSchema TestStringSchema
  TestInt8Schema TestInt16Schema TestInt32Schema TestInt64Schema TestFloatSchema TestDoubleSchema
  TestTableView TestTableViewSchemas TestPublishNilValue
)

if [[ -n "${1:-}" ]]; then
  RUN=$1
elif [[ -n "${TESTS:-}" ]]; then
  RUN=$TESTS
else
  RUN="^($(IFS='|'; echo "${COMPAT_TESTS[*]}"))\$"
fi

WORK=$(mktemp -d)
cleanup() {
  if [[ -n "${BROKER_PID:-}" ]]; then kill "$BROKER_PID" 2>/dev/null || true; wait "$BROKER_PID" 2>/dev/null || true; fi
  if [[ -z "${KEEP:-}" ]]; then rm -rf "$WORK"; else echo "kept $WORK" >&2; fi
}
trap cleanup EXIT

cp -r "$SRC" "$WORK/client"
chmod -R u+w "$WORK/client"
go build -o "$WORK/meshfed" ./cmd/meshfed

"$WORK/meshfed" broker --data-dir "$WORK/data" --listen localhost:6650 --http-addr localhost:8080 \
  --log-level warn >"$WORK/broker.log" 2>&1 &
BROKER_PID=$!
for _ in $(seq 100); do
  if curl -sf http://localhost:8080/admin/v2/clusters >/dev/null; then break; fi
  sleep 0.1
done
curl -sf http://localhost:8080/admin/v2/clusters >/dev/null || { cat "$WORK/broker.log"; exit 1; }

cd "$WORK/client"
set +e
go test ./pulsar -run "$RUN" -count=1 -timeout "${TIMEOUT:-20m}" -v 2>&1 | tee "$WORK/test.log" \
  | grep -E '^(--- (PASS|FAIL|SKIP)|PASS$|FAIL|ok )'
status=${PIPESTATUS[0]}
set -e
echo "passed: $(grep -c '^--- PASS' "$WORK/test.log")  failed: $(grep -c '^--- FAIL' "$WORK/test.log")"
cp "$WORK/test.log" "${COMPAT_LOG:-/tmp/meshfed-client-compat.log}"
exit "$status"
