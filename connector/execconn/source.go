package execconn

import (
	"context"
	"fmt"
	"time"

	"github.com/meshfed/meshfed/connector"
)

func init() {
	connector.RegisterSource(connector.ExecType, connector.SourceFactory{Open: openSource, Validate: validate})
	connector.RegisterSink(connector.ExecType, connector.SinkFactory{Open: openSink, Validate: validate})
}

// source is a Source served by a process; it is driven stop-and-wait
// (it does not implement connector.ConcurrentCommitter).
type source struct{ s *session }

var _ connector.Source = (*source)(nil)

func openSource(ctx context.Context, cc connector.Config) (connector.Source, error) {
	s, err := open(ctx, cc, roleSource)
	if err != nil {
		return nil, err
	}
	return &source{s: s}, nil
}

// Read sends READ and collects RECORD frames until OK. It waits as long
// as ctx allows: a source process answers when it has records.
func (src *source) Read(ctx context.Context) ([]connector.SourceRecord, error) {
	s := src.s
	s.mu.Lock()
	defer s.mu.Unlock()
	req := s.nextLocked()
	var recs []connector.SourceRecord
	err := s.exchangeLocked(ctx, "read", []frame{&readFrame{Request: req, Max: uint32(s.cfg.maxBatch)}}, func(f frame) (bool, error) {
		if handled, err := answer("read", req, f); handled {
			return err == nil, err
		}
		r, ok := f.(*recordFrame)
		switch {
		case !ok:
			return false, fmt.Errorf("%w: %s frame while READ %d is in flight", ErrProtocol, frameName(frameType(f)), req)
		case r.Request != req:
			return false, fmt.Errorf("%w: RECORD for request %d while %d is in flight", ErrProtocol, r.Request, req)
		case len(recs) == s.cfg.maxBatch:
			return false, fmt.Errorf("%w: more than the %d RECORDs READ %d asked for", ErrProtocol, s.cfg.maxBatch, req)
		}
		rec := connector.SourceRecord{Record: connector.Record{Key: r.Key, Value: clone(r.Value), Properties: r.Properties}, Position: r.Position}
		if r.EventTime != 0 {
			rec.EventTime = time.UnixMilli(r.EventTime)
		}
		recs = append(recs, rec)
		return false, nil
	})
	if err != nil {
		return nil, err
	}
	return recs, nil
}

// Commit sends COMMIT and waits for its OK.
func (src *source) Commit(ctx context.Context, position string) error {
	s := src.s
	s.mu.Lock()
	defer s.mu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, s.cfg.timeout)
	defer cancel()
	req := s.nextLocked()
	return s.exchangeLocked(ctx, "commit", []frame{&commitFrame{Request: req, Position: position}}, func(f frame) (bool, error) {
		if handled, err := answer("commit", req, f); handled {
			return err == nil, err
		}
		return false, fmt.Errorf("%w: %s frame while COMMIT %d is in flight", ErrProtocol, frameName(frameType(f)), req)
	})
}

// Close ends the process; records read but not committed are read again
// by the next process.
func (src *source) Close() error { return src.s.close() }

// clone copies b: decoded byte fields alias the frame buffer.
func clone(b []byte) []byte {
	if b == nil {
		return nil
	}
	return append([]byte(nil), b...)
}
