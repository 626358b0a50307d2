package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/pprof"
	"sort"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/apache/pulsar-client-go/pulsar"
	"github.com/spf13/cobra"

	"github.com/meshfed/meshfed/broker"
)

func init() { registerBench(newBenchBrokerCmd) }

func newBenchBrokerCmd() *cobra.Command {
	var (
		dir      string
		messages int
		sizes    []int
		policies []string
		latN     int
		cpuProf  string
		repl     bool
		replRate int
		replDur  time.Duration
		secure   bool
	)
	cmd := &cobra.Command{
		Use:   "broker",
		Short: "Benchmark the embedded broker with pulsar-client-go against the raw disk",
		Long: `Start the embedded broker in-process (one per fsync policy, data under --dir),
then for each payload size: produce --messages messages with batching on and
measure throughput and publish latency (send to receipt, under load), publish
--latency-messages more one at a time (batching off) for unloaded latency,
and consume them all back with acknowledgements. In the same run, write the
same bytes to a plain file in chunks of the broker's average group-commit
size with an fsync after each (the raw disk's sequential write+fsync rate)
and report the broker/raw ratio.

With --replication it measures geo-replication instead: two brokers in-process
(clusters a and c, namespace bench/geo replicated between them through the
admin API), for each payload size: the produce rate to a namespace of a that
is not replicated, the rate at which a burst of --messages produced to a
replicated topic reaches c (and its ratio to the local produce rate), the rate
at which c catches up on a backlog of --messages built while it was
unreachable, and the publish-on-a to receive-on-c latency of messages sent at a
steady --replication-rate for --replication-duration.

With --security it measures the cost of TLS and authentication instead: for
each payload size, in the same run, the publish throughput (batching on,
--messages messages) of a plaintext broker without authentication and of a
broker that clients reach over pulsar+ssl:// with an HS256 token, with
authorization on (the token's role granted produce); both in-process with
fsync off, so the difference is TLS and authentication, not the disk.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			dir, cleanup, err := benchDir(dir, "meshfed-bench-")
			if err != nil {
				return err
			}
			defer cleanup()
			if cpuProf != "" {
				f, err := os.Create(cpuProf)
				if err != nil {
					return err
				}
				defer f.Close()
				if err := pprof.StartCPUProfile(f); err != nil {
					return err
				}
				defer pprof.StopCPUProfile()
			}
			out := cmd.OutOrStdout()
			tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
			if secure {
				fmt.Fprintln(tw, "payload\tplaintext msg/s\tp50 ms\tp99 ms\ttls+token msg/s\tp50 ms\tp99 ms\ttls+token/plaintext\t")
				for _, size := range sizes {
					r, err := benchSecurity(cmd.Context(), filepath.Join(dir, fmt.Sprintf("sec-%d", size)), size, messages)
					if err != nil {
						return err
					}
					fmt.Fprintf(tw, "%d B\t%.0f\t%.2f\t%.2f\t%.0f\t%.2f\t%.2f\t%.2f\t\n", size, r.plainRate, r.plainP50, r.plainP99,
						r.secureRate, r.secureP50, r.secureP99, r.secureRate/r.plainRate)
				}
				return tw.Flush()
			}
			if repl {
				fmt.Fprintln(tw, "payload\tlocal produce msg/s\treplicated produce msg/s\treplicated to c msg/s\trepl/local\tcatch-up msg/s\tcatch-up/local\tsteady msg/s\tlag p50 ms\tlag p99 ms\tlag max ms\tlocal p50 ms\tlocal p99 ms\t")
				for _, size := range sizes {
					r, err := benchReplication(cmd.Context(), filepath.Join(dir, fmt.Sprintf("repl-%d", size)), messages, size, replRate, replDur)
					if err != nil {
						return err
					}
					fmt.Fprintf(tw, "%d B\t%.0f\t%.0f\t%.0f\t%.2f\t%.0f\t%.2f\t%.0f\t%.2f\t%.2f\t%.2f\t%.2f\t%.2f\t\n",
						size, r.localRate, r.replProduceRate, r.replRate, r.replRate/r.localRate, r.catchupRate,
						r.catchupRate/r.localRate, r.sentRate, r.lagP50, r.lagP99, r.lagMax, r.localLagP50, r.localLagP99)
				}
				return tw.Flush()
			}
			fmt.Fprintln(tw, "fsync\tpayload\tproduce msg/s\tproduce MB/s\tp50 ms\tp99 ms\tsync p50 ms\tsync p99 ms\tconsume msg/s\tconsume MB/s\tavg commit KiB\traw MB/s\tbroker/raw\t")
			for _, pol := range policies {
				for _, size := range sizes {
					r, err := benchOnce(cmd.Context(), filepath.Join(dir, fmt.Sprintf("%s-%d", pol, size)), broker.FsyncPolicy(pol), size, messages, latN)
					if err != nil {
						return err
					}
					fmt.Fprintf(tw, "%s\t%d B\t%.0f\t%.1f\t%.2f\t%.2f\t%.2f\t%.2f\t%.0f\t%.1f\t%.1f\t%.1f\t%.2f\t\n",
						pol, size, r.prodRate, r.prodMBs, r.p50, r.p99, r.syncP50, r.syncP99, r.consRate, r.consMBs,
						r.commitKiB, r.rawMBs, r.prodMBs/r.rawMBs)
				}
			}
			return tw.Flush()
		},
	}
	f := cmd.Flags()
	f.StringVar(&dir, "dir", "", "directory for broker data and the raw disk test file (default: a new temporary directory, removed afterwards)")
	f.IntVar(&messages, "messages", 100000, "messages produced and consumed per payload size and fsync policy")
	f.IntSliceVar(&sizes, "sizes", []int{100, 1024}, "payload sizes in bytes")
	f.StringSliceVar(&policies, "fsync", []string{string(broker.FsyncBatch), string(broker.FsyncOff)}, "fsync policies to measure")
	f.IntVar(&latN, "latency-messages", 500, "messages sent one at a time (batching off) for unloaded publish latency")
	f.StringVar(&cpuProf, "cpuprofile", "", "write a CPU profile of the whole run (broker and client) to this file")
	f.BoolVar(&repl, "replication", false, "measure geo-replication between two in-process brokers instead of storage (see above)")
	f.IntVar(&replRate, "replication-rate", 5000, "messages per second sent for the replication lag measurement (with --replication)")
	f.BoolVar(&secure, "security", false, "measure publish throughput over TLS with token authentication against plaintext in the same run (see above)")
	f.DurationVar(&replDur, "replication-duration", 10*time.Second, "how long the replication lag measurement sends (with --replication)")
	return cmd
}

type benchResult struct {
	prodRate, prodMBs, p50, p99, syncP50, syncP99, consRate, consMBs, commitKiB, rawMBs float64
}

func percentile(d []time.Duration, p float64) float64 {
	if len(d) == 0 {
		return 0
	}
	sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
	return float64(d[int(p*float64(len(d)-1))].Microseconds()) / 1000
}

func benchOnce(ctx context.Context, dir string, pol broker.FsyncPolicy, size, n, latN int) (benchResult, error) {
	var r benchResult
	b, err := broker.New(broker.Config{DataDir: filepath.Join(dir, "broker"), ListenAddr: "127.0.0.1:0", Fsync: pol,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		return r, err
	}
	if err := b.Start(); err != nil {
		return r, err
	}
	defer b.Close()
	client, err := pulsar.NewClient(pulsar.ClientOptions{URL: b.ServiceURL(), Logger: quietPulsarLogger()})
	if err != nil {
		return r, err
	}
	defer client.Close()
	topic := fmt.Sprintf("bench-%d", size)
	prod, err := client.CreateProducer(pulsar.ProducerOptions{Topic: topic, BatchingMaxPublishDelay: time.Millisecond,
		BatchingMaxMessages: 1000, MaxPendingMessages: 2000})
	if err != nil {
		return r, err
	}
	before := b.StorageStats()
	lat, el, sendErr := sendAll(ctx, prod, n, size)
	prod.Close()
	if sendErr != nil {
		return r, sendErr
	}
	after := b.StorageStats()
	r.prodRate = float64(n) / el
	r.prodMBs = float64(n*size) / el / 1e6
	r.p50, r.p99 = percentile(lat, 0.50), percentile(lat, 0.99)
	writes := after.Writes - before.Writes
	written := after.Bytes - before.Bytes
	if writes > 0 {
		r.commitKiB = float64(written) / float64(writes) / 1024
	}

	// Unloaded latency: one message at a time, no batching.
	sp, err := client.CreateProducer(pulsar.ProducerOptions{Topic: topic + "-sync", DisableBatching: true})
	if err != nil {
		return r, err
	}
	slat := make([]time.Duration, latN)
	for i := range slat {
		s := time.Now()
		if _, err := sp.Send(ctx, &pulsar.ProducerMessage{Payload: make([]byte, size)}); err != nil {
			return r, err
		}
		slat[i] = time.Since(s)
	}
	sp.Close()
	r.syncP50, r.syncP99 = percentile(slat, 0.50), percentile(slat, 0.99)

	// Consume from the start of the stored topic (the subscription is
	// created now, so nothing was prefetched while producing).
	start := time.Now()
	cons, err := client.Subscribe(pulsar.ConsumerOptions{Topic: topic, SubscriptionName: "bench",
		SubscriptionInitialPosition: pulsar.SubscriptionPositionEarliest, ReceiverQueueSize: 5000})
	if err != nil {
		return r, err
	}
	defer cons.Close()
	for i := 0; i < n; i++ {
		m, err := cons.Receive(ctx)
		if err != nil {
			return r, err
		}
		cons.Ack(m)
	}
	el = time.Since(start).Seconds()
	r.consRate = float64(n) / el
	r.consMBs = float64(n*size) / el / 1e6

	// Raw disk: the same bytes, in chunks of the broker's average commit,
	// each followed by fsync (or not, for the "off" policy).
	chunk := int(written / max(writes, 1))
	if chunk < 1 {
		chunk = 1
	}
	raw, err := rawDiskRate(filepath.Join(dir, "raw.dat"), chunk, written, pol != broker.FsyncOff)
	if err != nil {
		return r, err
	}
	r.rawMBs = raw
	return r, nil
}

func rawDiskRate(path string, chunk int, total int64, sync bool) (float64, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return 0, err
	}
	defer os.Remove(path)
	defer f.Close()
	buf := make([]byte, chunk)
	start := time.Now()
	var done int64
	for done < total {
		if _, err := f.Write(buf); err != nil {
			return 0, err
		}
		if sync {
			if err := f.Sync(); err != nil {
				return 0, err
			}
		}
		done += int64(chunk)
	}
	return float64(done) / time.Since(start).Seconds() / 1e6, nil
}

// sendAll sends n messages of size bytes through prod at once and waits for
// every receipt: each message's send-to-receipt latency, the seconds from
// the first send to the last receipt, and the last send error.
func sendAll(ctx context.Context, prod pulsar.Producer, n, size int) ([]time.Duration, float64, error) {
	payload := make([]byte, size)
	lat := make([]time.Duration, n)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var sendErr error
	start := time.Now()
	for i := 0; i < n; i++ {
		wg.Add(1)
		sent := time.Now()
		prod.SendAsync(ctx, &pulsar.ProducerMessage{Payload: payload}, func(_ pulsar.MessageID, _ *pulsar.ProducerMessage, err error) {
			lat[i] = time.Since(sent)
			if err != nil {
				mu.Lock()
				sendErr = err
				mu.Unlock()
			}
			wg.Done()
		})
	}
	wg.Wait()
	el := time.Since(start).Seconds()
	if sendErr != nil {
		return lat, el, fmt.Errorf("send: %w", sendErr)
	}
	return lat, el, nil
}
