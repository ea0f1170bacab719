package benchmarks

import (
	"context"

	"github.com/trailhq/trail/internal/pgtest"
)

// The throwaway PostgreSQL servers the comparison runs on (internal/pgtest).
type (
	ClusterConfig = pgtest.ClusterConfig
	Cluster       = pgtest.Cluster
)

// DurableSettings are the settings the cluster runs with (pgtest.DurableSettings).
func DurableSettings() []string { return pgtest.DurableSettings() }

// StartCluster starts a throwaway cluster (pgtest.StartCluster).
func StartCluster(ctx context.Context, cfg ClusterConfig) (*Cluster, error) {
	return pgtest.StartCluster(ctx, cfg)
}
