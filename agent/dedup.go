package agent

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/meshfed/meshfed/objects"
)

// ensureDedup turns on producer de-duplication for the namespace of topic on
// cluster, through the cluster's Pulsar admin API (POST
// /admin/v2/namespaces/{tenant}/{namespace}/deduplication). Effectively-once
// relies on it. Best effort: a broker that refuses (no admin URL, no
// permission) is logged, and the instance still skips what the broker
// reports it already has.
func (a *Agent) ensureDedup(ctx context.Context, cluster, topic string) error {
	t, err := objects.ParseTopic(topic)
	if err != nil {
		return err
	}
	admin := ""
	if cluster == a.cfg.Cluster && a.cfg.PulsarAdminURL != "" {
		admin = a.cfg.PulsarAdminURL
	} else if c, err := a.cluster(cluster); err == nil {
		admin = c.GetSpec().GetAdminUrl()
	}
	if admin == "" {
		return fmt.Errorf("cluster %q has no spec.adminURL: enable de-duplication for %s/%s yourself", cluster, t.Tenant, t.Namespace)
	}
	url := fmt.Sprintf("%s/admin/v2/namespaces/%s/%s/deduplication", strings.TrimRight(admin, "/"), t.Tenant, t.Namespace)
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader("true"))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("enable de-duplication on %s: %w", url, err)
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("enable de-duplication on %s: %s", url, resp.Status)
	}
	return nil
}
