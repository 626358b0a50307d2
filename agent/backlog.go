package agent

import (
	"context"
	"fmt"
	"time"
)

// DefaultBacklogInterval is how often an instance reads its input
// subscription's backlog from the input cluster's admin API.
const DefaultBacklogInterval = 15 * time.Second

// watchBacklog reads the backlog of the instance's input subscription now
// and every Config.BacklogInterval until ctx ends, for
// meshfed_function_backlog_messages. A failed read makes the gauge absent
// (not zero) until a read succeeds.
func (i *instance) watchBacklog(ctx context.Context, cluster string, topics []string, subscription string) {
	read := func() {
		rctx, cancel := context.WithTimeout(ctx, i.a.cfg.BacklogInterval)
		defer cancel()
		n, err := i.a.subscriptionBacklog(rctx, cluster, topics, subscription)
		if err != nil {
			i.stats.backlogUnknown()
			if ctx.Err() == nil {
				i.logger.Debug("could not read the input subscription's backlog", "err", err)
			}
			return
		}
		i.stats.setBacklog(n)
	}
	read()
	every(ctx, i.a.cfg.BacklogInterval, read)
}

// subscriptionBacklog returns the messages of topics (every partition of a
// partitioned topic) not yet acknowledged on subscription, as cluster's
// brokers report them.
func (a *Agent) subscriptionBacklog(ctx context.Context, cluster string, topics []string, subscription string) (int64, error) {
	adm, err := a.pulsar.admin(cluster)
	if err != nil {
		return 0, err
	}
	var total int64
	for _, topic := range topics {
		parts, err := partitionsOf(ctx, adm, topic)
		if err != nil {
			return 0, err
		}
		for _, p := range parts {
			st, err := adm.Topics().GetStatsWithContext(ctx, *p)
			if err != nil {
				return 0, fmt.Errorf("stats of %s: %w", p, err)
			}
			sub, ok := st.Subscriptions[subscription]
			if !ok {
				return 0, fmt.Errorf("stats of %s: no subscription %q", p, subscription)
			}
			total += sub.MsgBacklog
		}
	}
	return total, nil
}
