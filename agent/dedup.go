package agent

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/meshfed/meshfed/objects"
)

// ensureDedup turns on producer de-duplication for the namespace of topic on
// cluster, through the cluster's Pulsar admin API (pulsaradmin's
// Namespaces().SetDeduplicationStatus). Effectively-once relies on it.
// Best effort: a broker that refuses (no admin URL, no permission) is
// logged, and the instance still skips what the broker reports it already
// has.
func (a *Agent) ensureDedup(ctx context.Context, cluster, topic string) error {
	t, err := objects.ParseTopic(topic)
	if err != nil {
		return err
	}
	ns := t.Tenant + "/" + t.Namespace
	adm, err := a.pulsar.admin(cluster)
	if errors.Is(err, errNoAdminURL) {
		return fmt.Errorf("cluster %q has no spec.adminURL: enable de-duplication for %s yourself", cluster, ns)
	}
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := adm.Namespaces().SetDeduplicationStatusWithContext(ctx, ns, true); err != nil {
		return fmt.Errorf("enable de-duplication of %s on cluster %s: %w", ns, cluster, err)
	}
	return nil
}
