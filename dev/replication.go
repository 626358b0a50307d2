package dev

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"

	"github.com/apache/pulsar-client-go/pulsaradmin/pkg/rest"
	"github.com/apache/pulsar-client-go/pulsaradmin/pkg/utils"
)

// ReplicatedNamespace is the namespace meshfed dev geo-replicates between
// all of its clusters.
const ReplicatedNamespace = "public/default"

// configureReplication sets up geo-replication as an operator of Apache
// Pulsar would, through each broker's admin REST API: every other cluster
// is created (its serviceUrl and brokerServiceUrl), tenant public is
// allowed on all clusters, and namespace public/default replicates to all
// of them. It is idempotent: a data dir reused with other ports gets the
// clusters' addresses updated.
func configureReplication(ctx context.Context, secure *SecureInfo, clusters []ClusterInfo) error {
	if len(clusters) < 2 {
		return nil
	}
	var names []string
	for _, c := range clusters {
		names = append(names, c.Name)
	}
	for _, self := range clusters {
		if err := configureBroker(ctx, secure, self, clusters, names); err != nil {
			return fmt.Errorf("configure geo-replication on the broker of cluster %s (%s): %w", self.Name, self.AdminURL, err)
		}
	}
	return nil
}

func configureBroker(ctx context.Context, secure *SecureInfo, self ClusterInfo, clusters []ClusterInfo, names []string) error {
	admin, err := adminClient(secure, self.AdminURL)
	if err != nil {
		return err
	}
	for _, c := range clusters {
		if c.Name == self.Name {
			continue
		}
		data := utils.ClusterData{Name: c.Name, ServiceURL: c.AdminURL, BrokerServiceURL: c.ServiceURL}
		if secure != nil {
			data = utils.ClusterData{Name: c.Name, ServiceURLTls: c.AdminURL, BrokerServiceURLTls: c.ServiceURL, BrokerClientTLSEnabled: true}
		}
		err := admin.Clusters().CreateWithContext(ctx, data)
		if httpCode(err) == http.StatusConflict {
			err = admin.Clusters().UpdateWithContext(ctx, data)
		}
		if err != nil {
			return fmt.Errorf("create cluster %s: %w", c.Name, err)
		}
	}
	tenant, err := admin.Tenants().GetWithContext(ctx, "public")
	switch {
	case httpCode(err) == http.StatusNotFound:
		err = admin.Tenants().CreateWithContext(ctx, utils.TenantData{Name: "public", AllowedClusters: names})
	case err == nil:
		tenant.Name = "public"
		for _, n := range names {
			if !slices.Contains(tenant.AllowedClusters, n) {
				tenant.AllowedClusters = append(tenant.AllowedClusters, n)
			}
		}
		err = admin.Tenants().UpdateWithContext(ctx, tenant)
	}
	if err != nil {
		return fmt.Errorf("allow tenant public on %v: %w", names, err)
	}
	if err := admin.Namespaces().SetNamespaceReplicationClustersWithContext(ctx, ReplicatedNamespace, names); err != nil {
		return fmt.Errorf("replicate namespace %s to %v: %w", ReplicatedNamespace, names, err)
	}
	return nil
}

// httpCode is the HTTP status of a pulsaradmin error, or 0.
func httpCode(err error) int {
	var e rest.Error
	if errors.As(err, &e) {
		return e.Code
	}
	return 0
}
