package httpconn

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/meshfed/meshfed/connector"
)

// Headers of a webhook request the source reads.
const (
	// KeyHeader (or the query parameter key) is the record's key.
	KeyHeader = "X-Meshfed-Key"
	// ContentTypeProperty is the property holding the request's
	// Content-Type.
	ContentTypeProperty = "http.content-type"
)

func init() {
	connector.RegisterSource("http", connector.SourceFactory{
		Open:     openSource,
		Validate: connector.Validator(decodeSource),
	})
	connector.RegisterSink("http", connector.SinkFactory{
		Open:     openSink,
		Validate: connector.Validator(decodeSink),
	})
}

// request is one webhook call waiting for its record to be durable.
type request struct {
	rec  connector.Record
	done chan error // receives once: nil when durable
}

// errClosed answers requests the source will not make durable.
var errClosed = errors.New("source stopped")

type source struct {
	cfg    sourceConfig
	addr   string // the address listened on
	srv    *http.Server
	in     chan *request
	closed chan struct{}
	once   sync.Once

	// mu guards waiting: the requests read and not yet committed.
	mu      sync.Mutex
	waiting connector.Pending[*request]
}

var _ connector.ConcurrentCommitter = (*source)(nil)

// CommitsConcurrently: Commit and Read share only waiting, under mu.
func (s *source) CommitsConcurrently() bool { return true }

func openSource(_ context.Context, cfg connector.Config) (connector.Source, error) {
	c, err := decodeSource(cfg.Values)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", c.listen)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", c.listen, err)
	}
	s := &source{cfg: c, addr: ln.Addr().String(), in: make(chan *request), closed: make(chan struct{})}
	mux := http.NewServeMux()
	mux.Handle(c.path, s)
	s.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = s.srv.Serve(ln) }()
	cfg.Logger.Info("http source listening", "addr", ln.Addr().String(), "path", c.path)
	return s, nil
}

// ServeHTTP takes one record per POST and answers 200 once it is durable
// in the output topic, 503 when the source stops first, 504 when the
// source's timeout passes first (the record may still be written: a
// client that sends again may duplicate it).
func (s *source) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost && r.Method != http.MethodPut {
		w.Header().Set("Allow", "POST, PUT")
		http.Error(w, "POST a record", http.StatusMethodNotAllowed)
		return
	}
	if !s.authorized(r) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="meshfed"`)
		http.Error(w, "a valid bearer token is required", http.StatusUnauthorized)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, int64(s.cfg.maxBody)))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			http.Error(w, fmt.Sprintf("body over %d bytes", s.cfg.maxBody), http.StatusRequestEntityTooLarge)
			return
		}
		http.Error(w, "read body: "+err.Error(), http.StatusBadRequest)
		return
	}
	key := r.Header.Get(KeyHeader)
	if key == "" {
		key = r.URL.Query().Get("key")
	}
	rec := connector.Record{Key: key, Value: body, EventTime: time.Now()}
	if ct := r.Header.Get("Content-Type"); ct != "" {
		rec.Properties = map[string]string{ContentTypeProperty: ct}
	}
	req := &request{rec: rec, done: make(chan error, 1)}
	timer := time.NewTimer(s.cfg.timeout)
	defer timer.Stop()
	select {
	case s.in <- req:
	case <-s.closed:
		http.Error(w, errClosed.Error(), http.StatusServiceUnavailable)
		return
	case <-r.Context().Done():
		return
	case <-timer.C:
		http.Error(w, "timed out before the record was taken", http.StatusGatewayTimeout)
		return
	}
	select {
	case err := <-req.done:
		if err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusOK)
	case <-timer.C:
		http.Error(w, "timed out before the record was durable", http.StatusGatewayTimeout)
	}
}

func (s *source) authorized(r *http.Request) bool {
	const prefix = "Bearer "
	h := r.Header.Get("Authorization")
	if len(h) <= len(prefix) || h[:len(prefix)] != prefix {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(h[len(prefix):]), []byte(s.cfg.token)) == 1
}

func (s *source) Read(ctx context.Context) ([]connector.SourceRecord, error) {
	var reqs []*request
	select {
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-s.closed:
		return nil, errClosed
	case r := <-s.in:
		reqs = append(reqs, r)
	}
	reqs = connector.Drain(reqs, s.in, s.cfg.maxBatch)
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]connector.SourceRecord, len(reqs))
	for i, r := range reqs {
		out[i] = connector.SourceRecord{Record: r.rec, Position: s.waiting.Add(r)}
	}
	return out, nil
}

// Commit answers every request up to position: its record is durable.
func (s *source) Commit(_ context.Context, position string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	done, err := s.waiting.Take(position)
	for _, r := range done {
		r.done <- nil
	}
	return err
}

// Close stops the endpoint; requests not yet durable are answered 503.
func (s *source) Close() error {
	s.once.Do(func() { close(s.closed) })
	s.mu.Lock()
	for _, r := range s.waiting.TakeAll() {
		r.done <- errClosed
	}
	s.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return s.srv.Shutdown(ctx)
}
