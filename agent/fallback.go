package agent

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/apache/pulsar-client-go/pulsaradmin/pkg/rest"
	"github.com/apache/pulsar-client-go/pulsaradmin/pkg/utils"
)

// Where a failed-over instance starts reading, and how the home instance
// cleans up after it.
//
// Every instance commits, with its acknowledgements and at most once a
// second, a watermark per input partition into the function's state: the
// publish time before which every input of the partition has been
// processed. An instance running in a failover cluster that reads the
// geo-replicated copy of its input there and finds no subscription creates
// it and resets it to watermark − rewind (earliest without a watermark,
// never latest). The home instance, once running, deletes the function's
// subscription on the input topics of every failover cluster, so a
// fallback subscription does not pin the replicated backlog there.

const (
	// watermarkPrefix starts the watermark keys; the partition topic
	// follows.
	watermarkPrefix = reservedStatePrefix + "watermark/"
	// sharedWatermarkIndexes bounds the instance indexes whose watermarks a
	// fallback reads for a Shared subscription.
	sharedWatermarkIndexes = 64
	// cleanupFor bounds how long the home instance retries deleting a
	// fallback subscription (a fallback instance may still be attached).
	cleanupFor = 10 * time.Minute
	// cleanupRetryMax bounds the wait between attempts to delete a
	// fallback subscription: once the fallback instance has stopped, the
	// subscription goes within this long.
	cleanupRetryMax = 5 * time.Second
)

// watermarkKey is the state key of a partition's watermark. Under a
// Failover subscription one consumer at a time reads a partition, so one
// key per partition; under a Shared subscription every instance reads part
// of it, so each instance keeps its own (suffix #index) and a fallback
// takes the oldest.
func watermarkKey(partition string, shared bool, index int32) string {
	if shared {
		return watermarkPrefix + partition + "#" + strconv.Itoa(int(index))
	}
	return watermarkPrefix + partition
}

// watermarkKeys are the keys a fallback reads for partition.
func watermarkKeys(partition string) []string {
	keys := []string{watermarkKey(partition, false, 0)}
	for i := int32(0); i < sharedWatermarkIndexes; i++ {
		keys = append(keys, watermarkKey(partition, true, i))
	}
	return keys
}

// oldestWatermark is the oldest valid watermark among values (ms); false
// when there is none.
func oldestWatermark(values map[string][]byte) (int64, bool) {
	var wm int64
	found := false
	for _, v := range values {
		ms, err := strconv.ParseInt(string(v), 10, 64)
		if err != nil || ms <= 0 {
			continue
		}
		if !found || ms < wm {
			wm, found = ms, true
		}
	}
	return wm, found
}

// runsInFailoverCluster reports whether the instance runs in one of its
// function's failover clusters rather than at home (validation keeps the
// home cluster out of the failover list).
func (i *instance) runsInFailoverCluster() bool {
	return slices.Contains(i.spec().GetFailover().GetClusters(), i.asg.GetSpec().GetCluster())
}

// readsReplicatedCopy reports whether the instance reads the
// geo-replicated copy of its input in a failover cluster.
func (i *instance) readsReplicatedCopy() bool {
	return i.runsInFailoverCluster() && i.spec().GetInput().GetCluster() == i.asg.GetSpec().GetCluster()
}

// partitionsOf lists the partition topics of topic on a cluster (the topic
// itself when it is not partitioned).
func partitionsOf(ctx context.Context, adm adminClient, topic string) ([]*utils.TopicName, error) {
	tn, err := utils.GetTopicName(topic)
	if err != nil {
		return nil, fmt.Errorf("topic %q: %w", topic, err)
	}
	md, err := adm.Topics().GetMetadataWithContext(ctx, *tn)
	if err != nil {
		return nil, fmt.Errorf("partitions of %s: %w", tn, err)
	}
	if md.Partitions == 0 {
		return []*utils.TopicName{tn}, nil
	}
	out := make([]*utils.TopicName, 0, md.Partitions)
	for p := 0; p < md.Partitions; p++ {
		pt, err := tn.GetPartition(p)
		if err != nil {
			return nil, err
		}
		out = append(out, pt)
	}
	return out, nil
}

// prepareFallbackSubscription creates the function's subscription on every
// input partition of the replicated copy that lacks one, positioned at the
// partition's watermark − rewind, or at the earliest message without a
// watermark. It returns the number of subscriptions created. Partitions
// it cannot prepare (no admin URL, an admin error) are left to the
// consumer, which creates their subscription at the earliest message.
func (i *instance) prepareFallbackSubscription(ctx context.Context, st *fnState) (int, error) {
	adm, err := i.a.pulsar.admin(i.spec().GetInput().GetCluster())
	if err != nil {
		return 0, err
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	sub := i.subscriptionName()
	rewind := i.a.cfg.FallbackRewind
	created := 0
	var errs []error
	for _, topic := range i.spec().GetInput().GetTopics() {
		parts, err := partitionsOf(ctx, adm, topic)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, pt := range parts {
			subs, err := adm.Subscriptions().ListWithContext(ctx, *pt)
			if err != nil && !isNotFound(err) {
				errs = append(errs, fmt.Errorf("subscriptions of %s: %w", pt, err))
				continue
			}
			if slices.Contains(subs, sub) {
				continue
			}
			values, err := st.readInternal(ctx, watermarkKeys(pt.String()))
			if err != nil {
				errs = append(errs, err)
				continue
			}
			if err := adm.Subscriptions().CreateWithContext(ctx, *pt, sub, utils.Earliest); err != nil {
				errs = append(errs, fmt.Errorf("create subscription %s on %s: %w", sub, pt, err))
				continue
			}
			created++
			wm, ok := oldestWatermark(values)
			if !ok {
				i.logger.Info("fallback subscription created at the earliest message: no watermark of the home instance", "topic", pt.String(), "subscription", sub)
				continue
			}
			at := time.UnixMilli(wm).Add(-rewind)
			if err := adm.Subscriptions().ResetCursorToTimestampWithContext(ctx, *pt, sub, at.UnixMilli()); err != nil {
				errs = append(errs, fmt.Errorf("reset subscription %s on %s to %s (it stays at the earliest message): %w", sub, pt, at.UTC().Format(time.RFC3339Nano), err))
				continue
			}
			i.logger.Info("fallback subscription created at the home instance's watermark", "topic", pt.String(), "subscription", sub,
				"watermark", time.UnixMilli(wm).UTC(), "rewind", rewind)
		}
	}
	return created, errors.Join(errs...)
}

// removeFallbackSubscriptions deletes the function's subscription on its
// input topics in every failover cluster, retrying (up to cleanupFor)
// while a fallback consumer is still attached or the cluster is down.
// Deletion is never forced: a fallback instance still running keeps it.
func (i *instance) removeFallbackSubscriptions(ctx context.Context) {
	sub := i.subscriptionName()
	home := i.spec().GetInput().GetCluster()
	deadline := time.Now().Add(cleanupFor)
	for _, c := range i.spec().GetFailover().GetClusters() {
		if c == home {
			continue // the home instance's own input cluster
		}
		for _, topic := range i.spec().GetInput().GetTopics() {
			tn, err := utils.GetTopicName(topic)
			if err != nil {
				continue
			}
			backoff := time.Second
			for attempt := 1; ; attempt++ {
				err := i.deleteSubscription(ctx, c, *tn, sub)
				if err == nil {
					break
				}
				if errors.Is(err, errNoAdminURL) {
					i.logger.Warn("cannot remove a fallback subscription: the cluster has no admin URL; delete it yourself", "cluster", c,
						"topic", tn.String(), "subscription", sub)
					break
				}
				if ctx.Err() != nil {
					return
				}
				if time.Now().After(deadline) {
					i.logger.Warn("giving up removing the fallback subscription; delete it yourself", "cluster", c, "topic", tn.String(),
						"subscription", sub, "attempts", attempt, "err", err)
					break
				}
				i.logger.Debug("fallback subscription not removed yet; retrying", "cluster", c, "topic", tn.String(), "err", err, "backoff", backoff)
				select {
				case <-ctx.Done():
					return
				case <-time.After(backoff):
				}
				backoff = min(2*backoff, cleanupRetryMax)
			}
		}
	}
}

// deleteSubscription deletes sub on topic in cluster; nil also when there
// is nothing to delete.
func (i *instance) deleteSubscription(ctx context.Context, cluster string, tn utils.TopicName, sub string) error {
	adm, err := i.a.pulsar.admin(cluster)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	err = adm.Subscriptions().DeleteWithContext(ctx, tn, sub)
	switch {
	case err == nil:
		i.logger.Info("removed the fallback subscription", "cluster", cluster, "topic", tn.String(), "subscription", sub)
		return nil
	case isNotFound(err):
		return nil
	}
	return fmt.Errorf("delete subscription %s on %s in cluster %s: %w", sub, tn.String(), cluster, err)
}

// isNotFound reports a Pulsar admin 404 (topic or subscription not found).
func isNotFound(err error) bool {
	var re rest.Error
	return errors.As(err, &re) && re.Code == 404
}
