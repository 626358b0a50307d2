package controlplane

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"
	"github.com/meshfed/meshfed/controlplane/state"
	meshfedv1 "github.com/meshfed/meshfed/gen/meshfed/v1"
	"github.com/meshfed/meshfed/objects"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/keepalive"
)

// Server is one control-plane node.
type Server struct {
	cfg    Config
	logger *slog.Logger

	raft      *raft.Raft
	fsm       *FSM
	transport *raft.NetworkTransport
	logStore  *raftStores
	snapStore *raft.FileSnapshotStore
	// commits batches concurrent object writes into one entry (group commit).
	commits *groupCommit
	// watchEnc shares encoded watch responses among streams.
	watchEnc watchEncodings
	// raftNotify receives true/false as this node gains and loses leadership.
	raftNotify chan bool

	grpcServer *grpc.Server
	grpcLis    net.Listener
	httpServer *http.Server
	httpLis    net.Listener

	telemetry  *telemetry
	reads      *readBarrier
	heartbeats *heartbeats
	// live holds instance counters reported since the last Raft write of them (leader only).
	live *liveCounters
	// scaler is the autoscaler's leader-only memory; nil when not leader.
	scaler atomic.Pointer[autoscaler]

	// ready is true while this node is the leader and has applied every
	// entry of earlier terms (set in establishLeadership).
	ready atomic.Bool
	// lastPass is the duration of the scheduler's last pass, in
	// nanoseconds; zero before the first.
	lastPass atomic.Int64
	// lastFullPass is the duration of the last pass that did not skip
	// as nothing had changed (see quietPass); zero before the first.
	lastFullPass atomic.Int64

	// serverCreds and clientCreds secure the gRPC API and calls to other
	// servers (insecure unless Config.TLS is set).
	serverCreds grpc.ServerOption
	clientCreds grpc.DialOption

	// connsMu guards conns, the client connections to other servers.
	connsMu sync.Mutex
	conns   map[string]*grpc.ClientConn

	// verified caches the claims of token secrets whose signatures verified.
	verified verifiedTokens
	// auditCh queues audit records of requests that wrote nothing.
	auditCh chan *meshfedv1.AuditRecord

	shutdownOnce sync.Once
	shutdownCh   chan struct{}
	wg           sync.WaitGroup
}

// NewServer opens the data dir, starts Raft and the gRPC and HTTP listeners.
func NewServer(cfg Config) (*Server, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	s := &Server{
		cfg:        cfg,
		logger:     cfg.Logger.With("node", cfg.NodeID),
		conns:      map[string]*grpc.ClientConn{},
		shutdownCh: make(chan struct{}),
		auditCh:    make(chan *meshfedv1.AuditRecord, auditQueueSize),
	}
	var err error
	s.serverCreds, s.clientCreds = grpc.EmptyServerOption{}, grpc.WithTransportCredentials(insecure.NewCredentials())
	if cfg.TLS.Enabled() {
		sc, err := cfg.TLS.ServerCredentials()
		if err != nil {
			return nil, err
		}
		cc, err := cfg.TLS.ClientCredentials()
		if err != nil {
			return nil, err
		}
		s.serverCreds, s.clientCreds = grpc.Creds(sc), grpc.WithTransportCredentials(cc)
	}
	if s.telemetry, err = newTelemetry(cfg.NodeID); err != nil {
		return nil, err
	}
	s.fsm = NewFSM(state.Config{EventHistory: cfg.EventHistory}, s.logger)
	s.fsm.legacy = cfg.legacyLogTypes
	if err := s.openListeners(); err != nil {
		s.closeListeners()
		return nil, err
	}
	if err := s.setupRaft(); err != nil {
		s.closeListeners()
		return nil, err
	}
	s.reads = newReadBarrier(s.raft, cfg.ApplyTimeout)
	s.commits = &groupCommit{
		apply:   func(buf []byte) raft.ApplyFuture { return s.raft.Apply(buf, cfg.ApplyTimeout) },
		batchOK: func() bool { return s.membersApply(BatchType) },
	}
	s.heartbeats = newHeartbeats(cfg.AgentTTL, time.Now)
	s.live = newLiveCounters(cfg.CounterWriteInterval)
	s.telemetry.observeRaft(s)
	s.startGRPC()
	s.startHTTP()
	s.wg.Add(3)
	go s.monitorLeadership()
	go s.registerSelf()
	go s.runAuditor()
	return s, nil
}

func (s *Server) openListeners() error {
	var err error
	if s.grpcLis, err = net.Listen("tcp", s.cfg.GRPCAddr); err != nil {
		return fmt.Errorf("listen on --grpc-addr %s: %w", s.cfg.GRPCAddr, err)
	}
	if s.cfg.HTTPAddr != "" {
		if s.httpLis, err = net.Listen("tcp", s.cfg.HTTPAddr); err != nil {
			return fmt.Errorf("listen on --http-addr %s: %w", s.cfg.HTTPAddr, err)
		}
	}
	return nil
}

func (s *Server) closeListeners() {
	if s.grpcLis != nil {
		s.grpcLis.Close()
	}
	if s.httpLis != nil {
		s.httpLis.Close()
	}
}

func (s *Server) setupRaft() error {
	dir := filepath.Join(s.cfg.DataDir, "raft")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create data dir: %w", err)
	}
	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(s.cfg.NodeID)
	rc.SnapshotThreshold = s.cfg.SnapshotThreshold
	rc.SnapshotInterval = s.cfg.SnapshotInterval
	rc.TrailingLogs = s.cfg.TrailingLogs
	rc.Logger = newHCLogAdapter(s.logger.With("component", "raft"))
	s.raftNotify = make(chan bool, 16)
	rc.NotifyCh = s.raftNotify
	// Followers learn the commit index with the next AppendEntries; a short
	// commit timeout gets watch events out of followers sooner.
	rc.CommitTimeout = 10 * time.Millisecond
	if s.cfg.RaftTweak != nil {
		s.cfg.RaftTweak(rc)
	}
	var err error
	if s.logStore, err = openRaftStores(dir, s.cfg.RaftLogStore, s.logger); err != nil {
		return err
	}
	cache, err := raft.NewLogCache(512, s.logStore.log)
	if err != nil {
		return fmt.Errorf("raft log cache: %w", err)
	}
	s.snapStore, err = raft.NewFileSnapshotStore(dir, 3, io.Discard)
	if err != nil {
		s.logStore.Close()
		return fmt.Errorf("open snapshot store: %w", err)
	}
	if s.transport, err = s.newRaftTransport(); err != nil {
		s.logStore.Close()
		return err
	}
	has, err := raft.HasExistingState(cache, s.logStore.stable, s.snapStore)
	if err != nil {
		s.transport.Close()
		s.logStore.Close()
		return fmt.Errorf("read raft state: %w", err)
	}
	s.raft, err = raft.NewRaft(rc, s.fsm, cache, s.logStore.stable, s.snapStore, noPipeline{s.transport})
	if err != nil {
		s.transport.Close()
		s.logStore.Close()
		return fmt.Errorf("start raft: %w", err)
	}
	if has {
		s.logger.Info("resuming from existing raft state", "data_dir", s.cfg.DataDir)
		return nil
	}
	if len(s.cfg.Join) > 0 {
		s.wg.Add(1)
		go s.join()
		return nil
	}
	conf := raft.Configuration{}
	if len(s.cfg.InitialCluster) == 0 {
		conf.Servers = []raft.Server{{ID: rc.LocalID, Address: s.transport.LocalAddr()}}
	}
	for id, a := range s.cfg.InitialCluster {
		if id == s.cfg.NodeID {
			a = string(s.transport.LocalAddr())
		}
		conf.Servers = append(conf.Servers, raft.Server{ID: raft.ServerID(id), Address: raft.ServerAddress(a)})
	}
	if err := s.raft.BootstrapCluster(conf).Error(); err != nil && !errors.Is(err, raft.ErrCantBootstrap) {
		return fmt.Errorf("bootstrap raft: %w", err)
	}
	s.logger.Info("bootstrapped raft group", "voters", len(conf.Servers))
	return nil
}

// newRaftTransport listens on --raft-addr and advertises
// --raft-advertise-addr (or the bound address), over mutual TLS between
// server certificates when TLS is configured.
func (s *Server) newRaftTransport() (*raft.NetworkTransport, error) {
	var listen, dial *tls.Config
	if s.cfg.TLS.Enabled() {
		var err error
		if listen, dial, err = s.cfg.TLS.ServerOnlyConfigs(); err != nil {
			return nil, err
		}
	}
	lis, err := net.Listen("tcp", s.cfg.RaftAddr)
	if err != nil {
		return nil, fmt.Errorf("listen on --raft-addr %s: %w", s.cfg.RaftAddr, err)
	}
	stream := newRaftStream(lis, advertised(s.cfg.RaftAddr, s.cfg.RaftAdvertiseAddr, lis.Addr()), listen, dial)
	return raft.NewNetworkTransport(stream, 3, 10*time.Second, io.Discard), nil
}

// join asks the servers in Config.Join to add this node, until one does.
func (s *Server) join() {
	defer s.wg.Done()
	m := s.selfMember()
	req := &meshfedv1.AddPeerRequest{Id: m.GetId(), RaftAddress: m.GetRaftAddress(), GrpcAddress: m.GetGrpcAddress(), LogTypes: m.GetLogTypes()}
	for attempt := 0; ; attempt++ {
		for _, addr := range s.cfg.Join {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			conn, err := s.conn(addr)
			if err == nil {
				_, err = meshfedv1.NewOperatorServiceClient(conn).AddPeer(ctx, req)
			}
			cancel()
			if err == nil {
				s.logger.Info("joined raft group", "via", addr)
				return
			}
			if attempt%10 == 0 {
				s.logger.Warn("join failed; retrying", "via", addr, "err", err)
			}
		}
		select {
		case <-s.shutdownCh:
			return
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// registerSelf makes sure the replicated member table holds this server's
// addresses, so followers can forward to it when it leads.
func (s *Server) registerSelf() {
	defer s.wg.Done()
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		if m := s.selfMember(); !sameMember(s.fsm.State().Member(s.cfg.NodeID), m) {
			if s.inConfiguration() {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				_, err := (&operatorEndpoint{srv: s}).AddPeer(ctx, &meshfedv1.AddPeerRequest{
					Id: m.GetId(), RaftAddress: m.GetRaftAddress(), GrpcAddress: m.GetGrpcAddress(), LogTypes: m.GetLogTypes()})
				cancel()
				if err != nil {
					s.logger.Debug("register member record", "err", err)
				}
			}
		}
		select {
		case <-s.shutdownCh:
			return
		case <-t.C:
		}
	}
}

func (s *Server) inConfiguration() bool {
	f := s.raft.GetConfiguration()
	if f.Error() != nil {
		return false
	}
	for _, srv := range f.Configuration().Servers {
		if srv.ID == raft.ServerID(s.cfg.NodeID) {
			return true
		}
	}
	return false
}

// waitTick waits for the next tick of a leader-only loop: it returns true
// at the tick, false once leadership (stop) or the server ends.
func (s *Server) waitTick(stop <-chan struct{}, tick <-chan time.Time) bool {
	select {
	case <-stop:
		return false
	case <-s.shutdownCh:
		return false
	case <-tick:
		return true
	}
}

// monitorLeadership builds and tears down leader-only state.
func (s *Server) monitorLeadership() {
	defer s.wg.Done()
	var stop chan struct{}
	for {
		select {
		case <-s.shutdownCh:
			if stop != nil {
				close(stop)
			}
			return
		case isLeader := <-s.raftNotify:
			if isLeader && stop == nil {
				stop = make(chan struct{})
				s.wg.Add(1)
				go s.establishLeadership(stop)
			} else if !isLeader && stop != nil {
				close(stop)
				stop = nil
				s.revokeLeadership()
			}
		}
	}
}

// establishLeadership waits until every entry of earlier terms is applied,
// records this server's addresses, then opens the node for linearizable reads.
func (s *Server) establishLeadership(stop chan struct{}) {
	defer s.wg.Done()
	for {
		err := s.raft.Barrier(s.cfg.ApplyTimeout).Error()
		if err == nil {
			break
		}
		s.logger.Warn("leadership barrier failed; retrying", "err", err)
		select {
		case <-stop:
			return
		case <-time.After(100 * time.Millisecond):
		}
	}
	if m := s.selfMember(); !sameMember(s.fsm.State().Member(s.cfg.NodeID), m) {
		if _, err := s.raftApply(context.Background(), UpsertMemberType, m); err != nil {
			s.logger.Warn("record leader member", "err", err)
		}
	}
	for s.cfg.Auth && !s.fsm.State().AuthInitialized() {
		err := s.initAuth()
		if err == nil {
			break
		}
		s.logger.Warn("initialise authentication; retrying", "err", err)
		select {
		case <-stop:
			return
		case <-time.After(100 * time.Millisecond):
		}
	}
	select {
	case <-stop:
		return
	default:
	}
	agents, _, _ := s.fsm.State().List(state.Filter{Kind: objects.KindAgent})
	names := make([]string, 0, len(agents))
	for _, a := range agents {
		names = append(names, a.GetAgent().GetMetadata().GetName())
	}
	s.heartbeats.reset(names)
	s.live.reset()
	s.ready.Store(true)
	scaler := newAutoscaler(s.logger)
	s.scaler.Store(scaler)
	s.wg.Add(4)
	go s.flushCounters(stop)
	go s.runAutoscaler(stop, scaler)
	go s.runScheduler(stop)
	go s.runAuditTrim(stop)
	s.telemetry.leaderChanges.Add(context.Background(), 1)
	s.logger.Info("established leadership", "revision", s.fsm.State().Revision())
}

func (s *Server) revokeLeadership() {
	s.ready.Store(false)
	s.live.reset()
	s.scaler.Store(nil)
	s.logger.Info("revoked leadership")
}

// GRPCAddr returns the address the gRPC API listens on.
func (s *Server) GRPCAddr() string { return s.grpcLis.Addr().String() }

// GRPCAdvertiseAddr returns the gRPC address other servers are told:
// --grpc-advertise-addr as written, else the bind host with the bound port.
func (s *Server) GRPCAdvertiseAddr() string {
	return advertised(s.cfg.GRPCAddr, s.cfg.GRPCAdvertiseAddr, s.grpcLis.Addr()).String()
}

// RaftAddr returns the Raft address other servers dial (the advertised one).
func (s *Server) RaftAddr() string { return string(s.transport.LocalAddr()) }

// HTTPAddr returns the metrics/health address, or "" if not served.
func (s *Server) HTTPAddr() string {
	if s.httpLis == nil {
		return ""
	}
	return s.httpLis.Addr().String()
}

// NodeID returns this server's Raft ID.
func (s *Server) NodeID() string { return s.cfg.NodeID }

// IsLeader reports whether this node leads and is ready to serve.
func (s *Server) IsLeader() bool { return s.raft.State() == raft.Leader && s.ready.Load() }

// Raft exposes the Raft instance (tests and operators).
func (s *Server) Raft() *raft.Raft { return s.raft }

// State returns the current state store.
func (s *Server) State() *state.Store { return s.fsm.State() }

// LastSchedulerPass is how long the scheduler's last pass took on this
// server while it led (zero before the first).
func (s *Server) LastSchedulerPass() time.Duration { return time.Duration(s.lastPass.Load()) }

// LastFullSchedulerPass is how long the scheduler's last full pass took:
// one that read and judged everything rather than finding nothing changed
// since a pass that did nothing (zero before the first).
func (s *Server) LastFullSchedulerPass() time.Duration { return time.Duration(s.lastFullPass.Load()) }

// Shutdown stops serving and closes Raft and the stores. Safe to call twice.
func (s *Server) Shutdown() error {
	var err error
	s.shutdownOnce.Do(func() {
		close(s.shutdownCh)
		s.grpcServer.Stop()
		if s.httpServer != nil {
			s.httpServer.Close()
		}
		if e := s.raft.Shutdown().Error(); e != nil {
			err = fmt.Errorf("shutdown raft: %w", e)
		}
		s.transport.Close()
		s.wg.Wait()
		s.connsMu.Lock()
		for _, c := range s.conns {
			c.Close()
		}
		s.connsMu.Unlock()
		if e := s.logStore.Close(); e != nil && err == nil {
			err = fmt.Errorf("close raft log: %w", e)
		}
		s.telemetry.shutdown()
	})
	return err
}

// fastBackoff reconnects to a restarted server within a second.
var fastBackoff = backoff.Config{BaseDelay: 50 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: time.Second}

// conn returns a cached client connection to another server.
func (s *Server) conn(addr string) (*grpc.ClientConn, error) {
	s.connsMu.Lock()
	defer s.connsMu.Unlock()
	if c, ok := s.conns[addr]; ok {
		return c, nil
	}
	c, err := grpc.NewClient(addr, s.clientCreds,
		grpc.WithConnectParams(grpc.ConnectParams{Backoff: fastBackoff, MinConnectTimeout: time.Second}),
		// A frozen or partitioned peer is detected in about 4 s, failing
		// calls forwarded to it instead of letting them hang.
		grpc.WithKeepaliveParams(keepalive.ClientParameters{Time: 2 * time.Second, Timeout: 2 * time.Second, PermitWithoutStream: true}))
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", addr, err)
	}
	s.conns[addr] = c
	return c, nil
}

// noPipeline turns off pipelined replication: with it, hashicorp/raft
// v1.7.3 can deadlock in Shutdown after a leadership transfer (a pipeline
// goroutine waits on a full channel no one drains). Replication without the
// pipeline measured no slower in the apply benchmark.
type noPipeline struct{ *raft.NetworkTransport }

func (noPipeline) AppendEntriesPipeline(raft.ServerID, raft.ServerAddress) (raft.AppendPipeline, error) {
	return nil, raft.ErrPipelineReplicationNotSupported
}
