package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"time"

	"github.com/apache/pulsar-client-go/pulsar"
	plog "github.com/apache/pulsar-client-go/pulsar/log"
	"github.com/spf13/cobra"
)

func init() { register(newConsumeCmd) }

// quietPulsarLogger keeps the client library's connection chatter out of
// the CLI's output (warnings and errors still show).
func quietPulsarLogger() plog.Logger {
	return plog.NewLoggerWithSlog(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
}

func parseSubType(s string) (pulsar.SubscriptionType, error) {
	switch s {
	case "Exclusive", "exclusive":
		return pulsar.Exclusive, nil
	case "Shared", "shared":
		return pulsar.Shared, nil
	case "Failover", "failover":
		return pulsar.Failover, nil
	case "Key_Shared", "key_shared", "KeyShared":
		return pulsar.KeyShared, nil
	}
	return 0, fmt.Errorf("unknown subscription type %q (want Exclusive, Shared, Failover or Key_Shared)", s)
}

func newConsumeCmd() *cobra.Command {
	var (
		serviceURL string
		sub        string
		subType    string
		position   string
		count      int
		timeout    time.Duration
		hideProps  bool
		pc         pulsarClientFlags
	)
	cmd := &cobra.Command{
		Use:   "consume TOPIC",
		Short: "Receive messages from a Pulsar topic (like pulsar-client consume)",
		Long: `Subscribe to a topic of meshfed's embedded broker or of any Pulsar cluster,
print each message and acknowledge it. Stops after -n messages (0: run until
interrupted) or when --timeout passes without a message.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			st, err := parseSubType(subType)
			if err != nil {
				return usageError{err}
			}
			pos := pulsar.SubscriptionPositionLatest
			switch position {
			case "Latest", "latest":
			case "Earliest", "earliest":
				pos = pulsar.SubscriptionPositionEarliest
			default:
				return usageError{fmt.Errorf("-p %q: want Latest or Earliest", position)}
			}
			if sub == "" {
				return usageError{fmt.Errorf("--subscription is required")}
			}
			client, err := pc.newClient(serviceURL)
			if err != nil {
				return err
			}
			defer client.Close()
			c, err := client.Subscribe(pulsar.ConsumerOptions{Topic: args[0], SubscriptionName: sub, Type: st,
				SubscriptionInitialPosition: pos})
			if err != nil {
				return pc.explain(fmt.Errorf("subscribe: %w", err))
			}
			defer c.Close()
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt)
			defer stop()
			return consumeLoop(ctx, c, count, timeout, hideProps, cmd.OutOrStdout())
		},
	}
	f := cmd.Flags()
	f.StringVar(&serviceURL, "service-url", "pulsar://127.0.0.1:6650", "Pulsar service URL of the broker or cluster")
	f.StringVarP(&sub, "subscription", "s", "", "subscription name (required)")
	f.StringVarP(&subType, "subscription-type", "t", "Exclusive", "subscription type: Exclusive, Shared, Failover or Key_Shared")
	f.StringVarP(&position, "subscription-position", "p", "Latest", "where a new subscription starts: Latest or Earliest")
	f.IntVarP(&count, "num-messages", "n", 1, "messages to receive before exiting (0 means until interrupted)")
	f.DurationVar(&timeout, "timeout", 0, "exit when no message arrives for this long (0 waits forever)")
	f.BoolVar(&hideProps, "hide-properties", false, "print only payloads, without key and properties")
	pc.register(f)
	return cmd
}

func consumeLoop(ctx context.Context, c pulsar.Consumer, count int, timeout time.Duration, hideProps bool, out io.Writer) error {
	received := 0
	for count == 0 || received < count {
		rctx, cancel := ctx, context.CancelFunc(func() {})
		if timeout > 0 {
			rctx, cancel = context.WithTimeout(ctx, timeout)
		}
		m, err := c.Receive(rctx)
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			if timeout > 0 {
				break
			}
			return fmt.Errorf("receive: %w", err)
		}
		if hideProps {
			fmt.Fprintf(out, "%s\n", m.Payload())
		} else {
			fmt.Fprintf(out, "----- got message -----\nkey:[%s], properties:%v, content:%s\n", m.Key(), m.Properties(), m.Payload())
		}
		if err := c.Ack(m); err != nil {
			return fmt.Errorf("ack: %w", err)
		}
		received++
	}
	fmt.Fprintf(out, "%d messages successfully consumed\n", received)
	return nil
}
