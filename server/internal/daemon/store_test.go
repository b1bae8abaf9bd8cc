package daemon

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/garrison-chat/garrison/server/internal/config"
	"github.com/garrison-chat/garrison/server/internal/postgres"
)

func TestPoolOptions(t *testing.T) {
	t.Parallel()
	s := config.Default().SqlSettings
	s.DataSource = "postgres://garrison@db1,db2/garrison?target_session_attrs=read-write"
	s.DataSourceReplicas = []string{"postgres://garrison@db2/garrison"}
	s.DataSourceSearchReplicas = []string{"postgres://garrison@db3/garrison"}
	require.Equal(t, postgres.PoolOptions{
		DataSource: s.DataSource, MaxOpenConns: 100, MaxConnLifetime: time.Hour, MaxConnIdleTime: 5 * time.Minute,
		QueryTimeout: 30 * time.Second, ApplicationName: "garrison",
		Replicas: s.DataSourceReplicas, SearchReplicas: s.DataSourceSearchReplicas, ReplicaLagMax: time.Second,
	}, poolOptions(s))
}
