package functionsapi

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"time"

	"github.com/apache/pulsar-client-go/pulsar"
	plog "github.com/apache/pulsar-client-go/pulsar/log"
	meshfedv1 "github.com/meshfed/meshfed/gen/meshfed/v1"
	"github.com/meshfed/meshfed/objects"
	"google.golang.org/protobuf/proto"
)

// triggerTimeout bounds a trigger: connecting, sending, and waiting for
// the function's output.
const triggerTimeout = 30 * time.Second

// trigger sends a value to one of the function's input topics and answers
// the next message on its output topic, as Pulsar's trigger does (the
// first message written after the send, whichever input caused it).
func (h *Handler) trigger(ctx context.Context, w http.ResponseWriter, r *http.Request, f fn) error {
	form, err := h.form(r)
	if err != nil {
		return err
	}
	value := form.Data
	if form.DataStream != nil {
		if value != nil {
			return badRequest("data and dataStream: give one of them")
		}
		value = form.DataStream
	}
	if value == nil {
		return badRequest("data or dataStream: required (the value to send)")
	}
	m, err := h.mesh(ctx, f)
	if err != nil {
		return err
	}
	spec := m.GetSpec().GetFunctions()[0]
	topic := form.Topic
	switch {
	case topic == "":
		topic = spec.GetInput().GetTopics()[0]
	case !slices.Contains(spec.GetInput().GetTopics(), topic):
		return badRequest("topic %q is not an input of %s/%s/%s (inputs %v)", topic, f.tenant, f.namespace, f.name, spec.GetInput().GetTopics())
	}
	// Sending to the input is writing the function's data: it takes write
	// access to the function (authorized by this dry-run apply).
	check := proto.Clone(m).(*meshfedv1.FunctionMesh)
	check.Status = nil
	check.Metadata = &meshfedv1.ObjectMeta{Name: f.name, Tenant: f.tenant, Namespace: f.namespace, Labels: m.GetMetadata().GetLabels()}
	if _, err := h.b.Apply(ctx, &meshfedv1.ApplyRequest{Objects: []*meshfedv1.Object{objects.Wrap(check)}, DryRun: true}); err != nil {
		return err
	}
	cluster := spec.GetInput().GetCluster()
	resp, err := h.b.Get(ctx, &meshfedv1.GetRequest{Kind: objects.KindCluster, Name: cluster})
	if err != nil {
		return err
	}
	cs := resp.GetObject().GetCluster().GetSpec()
	if cs.GetAuth() != nil && proto.Size(cs.GetAuth()) > 0 {
		return &httpError{code: http.StatusNotImplemented, err: fmt.Errorf("%w: trigger on cluster %q, whose brokers need credentials that live on its agents' hosts", ErrNotImplemented, cluster)}
	}
	out, err := triggerOnce(ctx, cs.GetServiceUrl(), topic, spec.GetOutput().GetTopic(), value)
	if err != nil {
		return &httpError{code: http.StatusBadGateway, err: fmt.Errorf("trigger through cluster %q (%s): %w", cluster, cs.GetServiceUrl(), err)}
	}
	if out == nil {
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
	return writeJSON(w, http.StatusOK, string(out))
}

// triggerOnce sends value to input and, when output is set, returns the
// first message written to output after the send.
func triggerOnce(ctx context.Context, serviceURL, input, output string, value []byte) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, triggerTimeout)
	defer cancel()
	c, err := pulsar.NewClient(pulsar.ClientOptions{URL: serviceURL, ConnectionTimeout: 5 * time.Second, OperationTimeout: triggerTimeout,
		Logger: plog.NewLoggerWithSlog(slog.New(slog.NewTextHandler(io.Discard, nil)))})
	if err != nil {
		return nil, err
	}
	defer c.Close()
	var reader pulsar.Reader
	if output != "" {
		if reader, err = c.CreateReader(pulsar.ReaderOptions{Topic: output, StartMessageID: pulsar.LatestMessageID()}); err != nil {
			return nil, fmt.Errorf("reader of %s: %w", output, err)
		}
		defer reader.Close()
	}
	p, err := c.CreateProducer(pulsar.ProducerOptions{Topic: input})
	if err != nil {
		return nil, fmt.Errorf("producer of %s: %w", input, err)
	}
	defer p.Close()
	if _, err := p.Send(ctx, &pulsar.ProducerMessage{Payload: value}); err != nil {
		return nil, fmt.Errorf("send to %s: %w", input, err)
	}
	if reader == nil {
		return nil, nil
	}
	msg, err := reader.Next(ctx)
	if errors.Is(err, context.DeadlineExceeded) {
		return nil, fmt.Errorf("no output on %s within %s", output, triggerTimeout)
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", output, err)
	}
	return msg.Payload(), nil
}
