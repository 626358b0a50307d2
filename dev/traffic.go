package dev

import (
	"context"
	"log/slog"
	"time"

	"github.com/apache/pulsar-client-go/pulsar"
	plog "github.com/apache/pulsar-client-go/pulsar/log"
)

var sentences = []string{
	"the quick brown fox jumps over the lazy dog",
	"a mesh of functions spans many clusters",
	"one region fails and the functions move on",
	"nothing lost and nothing duplicated",
}

// traffic produces sentences to cluster a only, at the configured rate;
// geo-replication carries them to the other clusters. While a's broker is
// down the client queues and retries, as any Pulsar producer does.
func (f *Federation) traffic(ctx context.Context) {
	log := f.cfg.Logger.With("component", "traffic")
	opts := pulsar.ClientOptions{URL: f.Info.Clusters[0].ServiceURL}
	if s := f.Info.Secure; s != nil {
		creds, err := s.AdminCredentials()
		if err == nil {
			opts, err = creds.ClientOptions(f.Info.Clusters[0].ServiceURL)
		}
		if err != nil {
			log.Error("traffic client", "err", err)
			return
		}
	}
	opts.Logger = plog.NewLoggerWithSlog(slog.New(slog.DiscardHandler))
	c, err := pulsar.NewClient(opts)
	if err != nil {
		log.Error("traffic client", "err", err)
		return
	}
	defer c.Close()
	var p pulsar.Producer
	for p == nil {
		p, err = c.CreateProducer(pulsar.ProducerOptions{Topic: SentencesTopic, Name: "meshfed-dev-traffic"})
		if err != nil {
			log.Warn("traffic producer: retrying", "err", err)
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Second):
			}
		}
	}
	defer p.Close()
	t := time.NewTicker(time.Duration(float64(time.Second) / f.cfg.TrafficRate))
	defer t.Stop()
	for i := 0; ; i++ {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		p.SendAsync(ctx, &pulsar.ProducerMessage{Payload: []byte(sentences[i%len(sentences)])}, func(_ pulsar.MessageID, _ *pulsar.ProducerMessage, err error) {
			if err != nil && ctx.Err() == nil {
				log.Warn("traffic send", "err", err)
			}
		})
	}
}
