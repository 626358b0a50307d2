package main

import (
	"fmt"
	"os"
	"os/signal"
	"strings"
	"time"

	"github.com/apache/pulsar-client-go/pulsar"
	"github.com/spf13/cobra"
)

func init() { register(newProduceCmd) }

func newProduceCmd() *cobra.Command {
	var (
		serviceURL string
		messages   []string
		files      []string
		count      int
		key        string
		props      []string
		name       string
		batching   bool
		rate       float64
		separator  string
		pc         pulsarClientFlags
	)
	cmd := &cobra.Command{
		Use:   "produce TOPIC",
		Short: "Publish messages to a Pulsar topic (like pulsar-client produce)",
		Long: `Publish messages to a topic of meshfed's embedded broker or of any Pulsar
cluster. Each -m message (or each file's content) is sent -n times.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(messages) == 0 && len(files) == 0 {
				return usageError{fmt.Errorf("give at least one message with -m or a file with -f")}
			}
			if count < 1 {
				return usageError{fmt.Errorf("-n must be at least 1")}
			}
			var payloads [][]byte
			for _, m := range messages {
				if separator != "" {
					for _, part := range strings.Split(m, separator) {
						payloads = append(payloads, []byte(part))
					}
				} else {
					payloads = append(payloads, []byte(m))
				}
			}
			for _, f := range files {
				b, err := os.ReadFile(f)
				if err != nil {
					return err
				}
				payloads = append(payloads, b)
			}
			properties := map[string]string{}
			for _, p := range props {
				k, v, ok := strings.Cut(p, "=")
				if !ok {
					return usageError{fmt.Errorf("--property %q: want key=value", p)}
				}
				properties[k] = v
			}
			client, err := pc.newClient(serviceURL)
			if err != nil {
				return err
			}
			defer client.Close()
			p, err := client.CreateProducer(pulsar.ProducerOptions{Topic: args[0], Name: name, DisableBatching: !batching})
			if err != nil {
				return pc.explain(fmt.Errorf("create producer: %w", err))
			}
			defer p.Close()
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt)
			defer stop()
			var tick *time.Ticker
			if rate > 0 {
				tick = time.NewTicker(time.Duration(float64(time.Second) / rate))
				defer tick.Stop()
			}
			sent := 0
			for i := 0; i < count; i++ {
				for _, pl := range payloads {
					if tick != nil {
						select {
						case <-tick.C:
						case <-ctx.Done():
							return ctx.Err()
						}
					}
					id, err := p.Send(ctx, &pulsar.ProducerMessage{Payload: pl, Key: key, Properties: properties})
					if err != nil {
						return fmt.Errorf("send: %w", err)
					}
					sent++
					fmt.Fprintf(cmd.ErrOrStderr(), "sent %s\n", id)
				}
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%d messages successfully produced\n", sent)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&serviceURL, "service-url", "pulsar://127.0.0.1:6650", "Pulsar service URL of the broker or cluster")
	f.StringArrayVarP(&messages, "messages", "m", nil, "message payload to send (repeatable)")
	f.StringArrayVarP(&files, "files", "f", nil, "file whose content is sent as one message (repeatable)")
	f.IntVarP(&count, "num-produce", "n", 1, "how many times to send each message")
	f.StringVarP(&key, "key", "k", "", "partitioning key of every message")
	f.StringArrayVarP(&props, "property", "p", nil, "message property key=value (repeatable)")
	f.StringVar(&name, "producer-name", "", "producer name (empty lets the broker assign one)")
	f.BoolVar(&batching, "batching", false, "batch messages before sending")
	f.Float64VarP(&rate, "rate", "r", 0, "messages per second (0 sends as fast as possible)")
	f.StringVarP(&separator, "separator", "s", "", "split each -m value into several messages at this separator")
	pc.register(f)
	return cmd
}
