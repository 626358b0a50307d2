package controlplane

import (
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/hashicorp/raft"
	"github.com/meshfed/meshfed/controlplane/functionsapi"
	"github.com/meshfed/meshfed/controlplane/meshui"
	"github.com/meshfed/meshfed/objects"
)

// startHTTP serves /metrics, /healthz (the process is up and serving HTTP),
// /readyz (200 while readiness finds nothing missing; 503 with the reason
// otherwise), the Functions REST API and the mesh page /ui.
func (s *Server) startHTTP() {
	if s.httpLis == nil {
		return
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", s.telemetry.handler())
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		msg, err := s.readiness()
		if err != nil {
			http.Error(w, "not ready: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ready: "+msg)
	})
	mux.Handle("/admin/v3/functions/", s.functionsAPI())
	ui := meshui.New(&functionsBackend{s: s, objects: &objectEndpoint{srv: s}}, s.logger)
	mux.Handle(meshui.Root, ui)
	mux.Handle(meshui.Prefix, ui)
	mux.Handle(functionsapi.SourcesPrefix, s.connectorsAPI(objects.ConnectorSource))
	mux.Handle(functionsapi.SinksPrefix, s.connectorsAPI(objects.ConnectorSink))
	s.httpServer = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := s.httpServer.Serve(s.httpListener()); err != nil && err != http.ErrServerClosed {
			s.logger.Error("http server stopped", "err", err)
		}
	}()
}

// readiness says whether this server can serve: it is a member of a Raft
// group, a leader is known, and it is caught up — the leader has applied
// every entry of earlier terms; a follower heard from the leader within
// ReadyMaxContact and has at most ReadyMaxLag committed entries left to
// apply. It returns a summary when ready, else why not.
func (s *Server) readiness() (string, error) {
	if !s.inConfiguration() {
		return "", errors.New("not a member of a raft group yet (bootstrapping with --initial-cluster, or waiting for --join to be accepted)")
	}
	_, leader := s.raft.LeaderWithID()
	if leader == "" {
		return "", errors.New("no raft leader known")
	}
	applied, commit := s.raft.AppliedIndex(), s.raft.CommitIndex()
	if s.raft.State() == raft.Leader {
		if !s.ready.Load() {
			return "", errors.New("leader is applying the entries of earlier terms")
		}
		return fmt.Sprintf("leader %s (this server), applied index %d, revision %d", leader, applied, s.fsm.State().Revision()), nil
	}
	since := time.Since(s.raft.LastContact())
	if since > s.cfg.ReadyMaxContact {
		return "", fmt.Errorf("last heard from leader %s %s ago (the bound is %s)", leader, since.Round(time.Millisecond), s.cfg.ReadyMaxContact)
	}
	if commit > applied && commit-applied > s.cfg.ReadyMaxLag {
		return "", fmt.Errorf("%d committed raft entries not applied yet (applied %d of %d; the bound is %d)", commit-applied, applied, commit, s.cfg.ReadyMaxLag)
	}
	return fmt.Sprintf("leader %s, applied index %d of %d, last contact %s ago, revision %d", leader, applied, commit, since.Round(time.Millisecond), s.fsm.State().Revision()), nil
}
