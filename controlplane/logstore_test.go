package controlplane

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	meshfedv1 "github.com/meshfed/meshfed/gen/meshfed/v1"
	"github.com/meshfed/meshfed/objects"
)

func TestChooseRaftLogStore(t *testing.T) {
	tests := []struct {
		name    string
		files   []string // created under the raft dir ("x/" is a directory)
		want    string
		got     string
		wantErr string
	}{
		{"new dir, auto", nil, RaftLogStoreAuto, RaftLogStoreWAL, ""},
		{"new dir, empty means auto", nil, "", RaftLogStoreWAL, ""},
		{"new dir, bolt", nil, RaftLogStoreBolt, RaftLogStoreBolt, ""},
		{"new dir, wal", nil, RaftLogStoreWAL, RaftLogStoreWAL, ""},
		{"bolt dir, auto keeps bolt", []string{boltLogFile}, RaftLogStoreAuto, RaftLogStoreBolt, ""},
		{"bolt dir, bolt", []string{boltLogFile}, RaftLogStoreBolt, RaftLogStoreBolt, ""},
		{"bolt dir, wal refused", []string{boltLogFile}, RaftLogStoreWAL, "", "not migrated"},
		{"wal dir, auto keeps wal", []string{walLogDir + "/", walStableFile}, RaftLogStoreAuto, RaftLogStoreWAL, ""},
		{"wal dir, bolt refused", []string{walLogDir + "/"}, RaftLogStoreBolt, "", "not migrated"},
		{"both, refused", []string{boltLogFile, walLogDir + "/"}, RaftLogStoreAuto, "", "holds both"},
		{"unknown", nil, "rocks", "", `"rocks"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			for _, f := range tt.files {
				var err error
				if d, ok := strings.CutSuffix(f, "/"); ok {
					err = os.Mkdir(filepath.Join(dir, d), 0o700)
				} else {
					err = os.WriteFile(filepath.Join(dir, f), nil, 0o600)
				}
				if err != nil {
					t.Fatal(err)
				}
			}
			got, err := chooseRaftLogStore(dir, tt.want)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.got {
				t.Fatalf("got %q, %v; want %q", got, err, tt.got)
			}
		})
	}
}

// TestRestartKeepsRaftLogStore writes through a server with each log
// store, snapshots, writes more, restarts it on the same data dir with
// auto and checks that it kept its store and every object.
func TestRestartKeepsRaftLogStore(t *testing.T) {
	for _, kind := range []string{RaftLogStoreBolt, RaftLogStoreWAL} {
		t.Run(kind, func(t *testing.T) {
			cfg := TestConfig(t, "s1")
			cfg.RaftLogStore = kind
			cfg.SnapshotThreshold = 4
			cfg.TrailingLogs = 2
			s, err := NewServer(cfg)
			if err != nil {
				t.Fatal(err)
			}
			WaitForLeader(t, s)
			c, _ := TestClient(t, s.GRPCAddr())
			for i := 0; i < 6; i++ {
				mustApply(t, c, clusterObj(fmt.Sprintf("c%d", i)))
			}
			if err := s.Raft().Snapshot().Error(); err != nil {
				t.Fatalf("snapshot: %v", err)
			}
			for i := 6; i < 9; i++ {
				mustApply(t, c, clusterObj(fmt.Sprintf("c%d", i)))
			}
			raftAddr := s.RaftAddr()
			if err := s.Shutdown(); err != nil {
				t.Fatal(err)
			}
			cfg.RaftAddr = raftAddr
			cfg.RaftLogStore = RaftLogStoreAuto
			s2, err := NewServer(cfg)
			if err != nil {
				t.Fatalf("restart: %v", err)
			}
			t.Cleanup(func() { _ = s2.Shutdown() })
			if s2.logStore.kind != kind {
				t.Fatalf("restarted with the %s store, want %s kept", s2.logStore.kind, kind)
			}
			WaitForLeader(t, s2)
			c2, _ := TestClient(t, s2.GRPCAddr())
			mustApply(t, c2, clusterObj("c9"))
			resp, err := c2.List(testCtx(t), &meshfedv1.ListRequest{Kind: objects.KindCluster})
			if err != nil {
				t.Fatal(err)
			}
			if n := len(resp.GetObjects()); n != 10 {
				t.Fatalf("%d clusters after restart, want 10", n)
			}
		})
	}
}
