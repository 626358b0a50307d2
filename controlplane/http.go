package controlplane

import (
	"fmt"
	"net/http"
	"time"

	"github.com/hashicorp/raft"
)

// startHTTP serves /metrics, /healthz (the process is up) and /readyz (this
// node knows a leader and has applied the state; 503 otherwise).
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
		addr, id := s.raft.LeaderWithID()
		if addr == "" {
			http.Error(w, "not ready: no raft leader known", http.StatusServiceUnavailable)
			return
		}
		if s.raft.State() == raft.Leader && !s.ready.Load() {
			http.Error(w, "not ready: leader is applying earlier entries", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintf(w, "ready: leader %s, revision %d\n", id, s.fsm.State().Revision())
	})
	s.httpServer = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := s.httpServer.Serve(s.httpLis); err != nil && err != http.ErrServerClosed {
			s.logger.Error("http server stopped", "err", err)
		}
	}()
}
