package httpconn

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/meshfed/meshfed/connector"
)

// Headers of a record-mode request (batch mode carries the same in JSON).
const (
	TopicHeader    = "X-Meshfed-Topic"
	StreamHeader   = "X-Meshfed-Stream"
	SequenceHeader = "X-Meshfed-Sequence"
	// PropertyHeaderPrefix precedes each property's name.
	PropertyHeaderPrefix = "X-Meshfed-Property-"
)

// BatchRecord is one record of a batch-mode request body (a JSON array of
// them). Value is the record as text when it is valid UTF-8, else
// ValueBase64 holds it. Stream and Sequence identify the record under
// effectively_once: a receiver that keeps the highest Sequence per Stream
// and ignores records at or below it sees each record once.
type BatchRecord struct {
	Key         string            `json:"key,omitempty"`
	Value       string            `json:"value,omitempty"`
	ValueBase64 []byte            `json:"valueBase64,omitempty"`
	Properties  map[string]string `json:"properties,omitempty"`
	Topic       string            `json:"topic,omitempty"`
	EventTime   *time.Time        `json:"eventTime,omitempty"`
	Stream      string            `json:"stream,omitempty"`
	Sequence    uint64            `json:"sequence,omitempty"`
}

type sink struct {
	cfg    sinkConfig
	client *http.Client
}

var _ connector.Sink = (*sink)(nil)

func openSink(_ context.Context, cfg connector.Config) (connector.Sink, error) {
	c, err := decodeSink(cfg.Values)
	if err != nil {
		return nil, err
	}
	return &sink{cfg: c, client: &http.Client{Timeout: c.timeout}}, nil
}

// Write sends the batch (one request, or one per record in record mode)
// and returns once every request was answered 2xx.
func (s *sink) Write(ctx context.Context, batch []connector.SinkRecord) error {
	if s.cfg.mode == modeBatch {
		body := make([]BatchRecord, len(batch))
		for i, r := range batch {
			b := BatchRecord{Key: r.Key, Properties: r.Properties, Topic: r.Topic, Stream: r.Stream, Sequence: r.Sequence}
			if utf8.Valid(r.Value) {
				b.Value = string(r.Value)
			} else {
				b.ValueBase64 = r.Value
			}
			if !r.EventTime.IsZero() {
				t := r.EventTime
				b.EventTime = &t
			}
			body[i] = b
		}
		js, err := json.Marshal(body)
		if err != nil {
			return fmt.Errorf("encode batch: %w", err)
		}
		return s.send(ctx, js, map[string]string{"Content-Type": "application/json"})
	}
	for i, r := range batch {
		h := map[string]string{"Content-Type": "application/octet-stream", TopicHeader: r.Topic}
		if r.Key != "" {
			h[KeyHeader] = r.Key
		}
		if r.Stream != "" {
			h[StreamHeader], h[SequenceHeader] = r.Stream, strconv.FormatUint(r.Sequence, 10)
		}
		for k, v := range r.Properties {
			h[PropertyHeaderPrefix+k] = v
		}
		if err := s.send(ctx, r.Value, h); err != nil {
			return fmt.Errorf("record %d of %d: %w", i+1, len(batch), err)
		}
	}
	return nil
}

// send makes one request, retrying transport errors, 429 and 5xx answers
// up to cfg.retries times with exponential backoff.
func (s *sink) send(ctx context.Context, body []byte, headers map[string]string) error {
	backoff := s.cfg.backoff
	for attempt := 0; ; attempt++ {
		retry, err := s.try(ctx, body, headers)
		if err == nil {
			return nil
		}
		if !retry || attempt >= s.cfg.retries {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 10*time.Second)
	}
}

func (s *sink) try(ctx context.Context, body []byte, headers map[string]string) (retry bool, err error) {
	req, err := http.NewRequestWithContext(ctx, s.cfg.method, s.cfg.url, bytes.NewReader(body))
	if err != nil {
		return false, err
	}
	for k, v := range s.cfg.headers {
		req.Header.Set(k, v)
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	if s.cfg.token != "" {
		req.Header.Set("Authorization", "Bearer "+s.cfg.token)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return ctx.Err() == nil, fmt.Errorf("%s %s: %w", s.cfg.method, s.cfg.url, err)
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		return false, nil
	case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500:
		return true, fmt.Errorf("%s %s: %s: %s", s.cfg.method, s.cfg.url, resp.Status, bytes.TrimSpace(msg))
	}
	return false, fmt.Errorf("%s %s: %s: %s", s.cfg.method, s.cfg.url, resp.Status, bytes.TrimSpace(msg))
}

func (s *sink) Close() error {
	s.client.CloseIdleConnections()
	return nil
}
