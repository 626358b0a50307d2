package drill

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/apache/pulsar-client-go/pulsar"
	"github.com/apache/pulsar-client-go/pulsaradmin/pkg/utils"
	"github.com/meshfed/meshfed/agent/pulsarauth"
	"github.com/meshfed/meshfed/federation"
	meshfedv1 "github.com/meshfed/meshfed/gen/meshfed/v1"
	"github.com/meshfed/meshfed/objects"
)

// pulsarClient returns a client for a cluster's broker, from its
// spec.serviceURL.
func (r *runner) pulsarClient(ctx context.Context, cluster string) (pulsar.Client, error) {
	if pc, ok := r.pulsar[cluster]; ok {
		return pc, nil
	}
	gctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	got, err := r.c.Get(gctx, &meshfedv1.GetRequest{Kind: objects.KindCluster, Name: cluster})
	if err != nil {
		return nil, fmt.Errorf("get cluster %s: %w", cluster, err)
	}
	url := got.GetObject().GetCluster().GetSpec().GetServiceUrl()
	if url == "" {
		return nil, fmt.Errorf("cluster %s has no spec.serviceURL", cluster)
	}
	creds, err := clusterCredentials(got.GetObject().GetCluster())
	if err != nil {
		return nil, err
	}
	opts, err := creds.ClientOptions(url)
	if err != nil {
		return nil, fmt.Errorf("pulsar client for cluster %s (%s): %w", cluster, url, err)
	}
	opts.Logger, opts.OperationTimeout = r.cfg.PulsarLogger, 10*time.Second
	pc, err := pulsar.NewClient(opts)
	if err != nil {
		return nil, fmt.Errorf("pulsar client for cluster %s (%s): %w", cluster, url, err)
	}
	r.pulsar[cluster], r.urls[cluster] = pc, url
	return pc, nil
}

// clusterCredentials are the credentials a Cluster object names for its
// brokers (spec.auth), resolved on this host as an agent's are: the drill
// runs where the agents' credential files are (meshfed dev --secure).
func clusterCredentials(c *meshfedv1.Cluster) (*pulsarauth.Credentials, error) {
	a, err := objects.ParseClusterAuth(c.GetSpec().GetAuth(), objects.AuthInObject)
	if err != nil {
		return nil, fmt.Errorf("cluster %s spec.auth: %w", c.GetMetadata().GetName(), err)
	}
	return pulsarauth.New(a), nil
}

// deriveStreams picks the input and watched topics from the first affected
// function that has both.
func deriveStreams(failed string, home []*meshfedv1.Assignment) (in, out *federation.DrillStream) {
	for _, a := range home {
		fs := a.GetSpec().GetFunctionSpec()
		input, output := fs.GetInput(), fs.GetOutput()
		if len(input.GetTopics()) == 0 || output.GetTopic() == "" {
			continue
		}
		// The input moves with the function when it is read in the
		// function's home cluster or in the failed one (EffectiveSpec):
		// the fallback clusters then read their copy of the topic.
		in = &federation.DrillStream{Clusters: []string{input.GetCluster()}, Topic: input.GetTopics()[0]}
		if input.GetCluster() == federation.PlacementCluster(fs) || input.GetCluster() == failed {
			in.Clusters = appendNew(in.Clusters, fs.GetFailover().GetClusters()...)
		}
		outCluster := output.GetCluster()
		if outCluster == "" {
			outCluster = federation.PlacementCluster(fs)
		}
		out = &federation.DrillStream{Clusters: []string{outCluster}, Topic: output.GetTopic()}
		if outCluster == failed {
			out.Clusters = appendNew(out.Clusters, fs.GetFailover().GetClusters()...)
		}
		return in, out
	}
	return nil, nil
}

func appendNew(list []string, more ...string) []string {
	for _, m := range more {
		if !slices.Contains(list, m) {
			list = append(list, m)
		}
	}
	return list
}

// startStream opens the watched topics' readers at their end, finds out
// whether the input is geo-replicated to its fallback copies, starts
// producing, and waits for the first output. The caller stops producing
// (st.stopProducing) and closes it.
//
// When the input's namespace is replicated from its home cluster to every
// fallback copy, the stream is written to the home only, and the fallback
// copies are read to see what replication delivered; with
// Config.ProducerFailover a crash drill's stream goes to the first fallback
// while the home is down. Otherwise the drill writes the identical stream to
// every copy itself and the report says replication was simulated.
func (r *runner) startStream(ctx context.Context, home []*meshfedv1.Assignment) (_ *stream, err error) {
	rep := r.report
	ins, outs := r.cfg.Inputs, r.cfg.Watch
	din, dout := deriveStreams(r.cfg.Cluster, home)
	if len(ins) == 0 {
		if din == nil {
			return nil, fmt.Errorf("no affected function has an input and an output topic: name them with --produce and --watch")
		}
		ins = []federation.DrillStream{*din}
	}
	if len(outs) == 0 {
		if dout == nil {
			return nil, fmt.Errorf("no affected function has an output topic: name one with --watch")
		}
		outs = []federation.DrillStream{*dout}
	}
	if len(ins) != 1 {
		return nil, fmt.Errorf("one input stream per drill, got %d", len(ins))
	}
	rep.Inputs, rep.Watched = ins, outs
	in := ins[0]
	if len(in.Clusters) > 1 {
		if ok, why := r.inputReplicated(ctx, in); ok {
			rep.Replication = federation.ReplicationGeo
		} else {
			rep.Replication = federation.ReplicationSimulated
			r.note("replication simulated: %s; the drill writes the identical stream to %s itself. "+
				"The copies differ in publish times and positions, which a real geo-replicated copy keeps: effectively-once may not "+
				"recognise an input processed in one copy when it meets it in the other, so duplicates across the move are to be expected", why, in)
		}
	}
	st := newStream(newMarker(rep.ID, r.cfg.Outputs), r.cfg.Now)
	defer func() {
		if err != nil {
			st.close()
		}
	}()
	reader := func(cl, topic string) (pulsar.Reader, error) {
		pc, err := r.pulsarClient(ctx, cl)
		if err != nil {
			return nil, err
		}
		rd, err := pc.CreateReader(pulsar.ReaderOptions{Topic: topic, StartMessageID: pulsar.LatestMessageID(), ReceiverQueueSize: 1000})
		if err != nil {
			return nil, fmt.Errorf("read %s on cluster %s: %w", topic, cl, err)
		}
		return rd, nil
	}
	for _, w := range outs {
		for _, cl := range w.Clusters {
			rd, err := reader(cl, w.Topic)
			if err != nil {
				return nil, err
			}
			st.startReading(rd)
		}
	}
	producer := func(cl, name string) (pulsar.Producer, error) { return r.producer(ctx, cl, name) }
	name := "meshfed-drill-" + rep.ID
	if rep.Replication == federation.ReplicationGeo {
		for _, cl := range in.Clusters[1:] {
			rd, err := reader(cl, in.Topic)
			if err != nil {
				return nil, err
			}
			st.startReadingCopy(cl, rd)
		}
		p, err := producer(in.Clusters[0], name)
		if err != nil {
			return nil, err
		}
		st.targets = append(st.targets, target{cluster: in.Clusters[0], copies: []pulsar.Producer{p}})
		if r.cfg.Mode == federation.DrillModeCrash && r.cfg.ProducerFailover {
			// Its own producer name: the fallback's messages are not a
			// continuation of the home producer's sequence there.
			fb := in.Clusters[1]
			p, err := producer(fb, name+"-"+fb)
			if err != nil {
				return nil, err
			}
			st.targets = append(st.targets, target{cluster: fb, copies: []pulsar.Producer{p}})
		}
	} else {
		t := target{cluster: in.Clusters[0]}
		for _, cl := range in.Clusters {
			p, err := producer(cl, name)
			if err != nil {
				return nil, err
			}
			t.copies = append(t.copies, p)
		}
		st.targets = append(st.targets, t)
	}
	rep.Timeline.Started = r.cfg.Now()
	st.startProducing(r.cfg.Rate)
	how := "one copy"
	switch rep.Replication {
	case federation.ReplicationGeo:
		how = fmt.Sprintf("written to %s only, geo-replicated to %s", in.Clusters[0], strings.Join(in.Clusters[1:], ","))
	case federation.ReplicationSimulated:
		how = "identical stream written to each copy"
	}
	r.emit(PhaseStream, "producing %g msg/s (%d items each) to %s (%s); watching %s", r.cfg.Rate, r.cfg.Outputs, in, how, streamsString(outs))
	// The pipeline must work before anything is failed.
	select {
	case <-st.firstRead:
		r.emit(PhaseStream, "first output read after %.2fs", r.cfg.Now().Sub(rep.Timeline.Started).Seconds())
	case <-time.After(r.cfg.ReadyTimeout):
		return nil, fmt.Errorf("no output of the drill's stream on %s within %s: check --watch and the mesh", streamsString(outs), r.cfg.ReadyTimeout)
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return st, nil
}

// producer creates a producer of the input topic on a cluster.
func (r *runner) producer(ctx context.Context, cluster, name string) (pulsar.Producer, error) {
	topic := r.report.Inputs[0].Topic
	pc, err := r.pulsarClient(ctx, cluster)
	if err != nil {
		return nil, err
	}
	// A home down for the whole outage gets its queued sends through
	// after it returns, not failed in the meantime. One message per
	// batch, so that every copy's entries are alike; batching stays on
	// because pulsar-client-go v0.19.0's unbatched send reads the
	// producer's name while a reconnect (the broker killed) rewrites it: a
	// data race.
	p, err := pc.CreateProducer(pulsar.ProducerOptions{Topic: topic, Name: name, BatchingMaxMessages: 1,
		BatchingMaxPublishDelay: time.Millisecond, SendTimeout: max(30*time.Second, r.cfg.Duration+r.cfg.RecoveryTimeout)})
	if err != nil {
		return nil, fmt.Errorf("produce to %s on cluster %s: %w", topic, cluster, err)
	}
	return p, nil
}

// inputReplicated reports whether the input topic's namespace is
// geo-replicated from its home cluster to every other copy, as the home
// broker's admin API (the Cluster's spec.adminURL) says; if not, why.
func (r *runner) inputReplicated(ctx context.Context, in federation.DrillStream) (bool, string) {
	home := in.Clusters[0]
	tn, err := utils.GetTopicName(in.Topic)
	if err != nil {
		return false, fmt.Sprintf("topic %q: %v", in.Topic, err)
	}
	ns := tn.GetTenant() + "/" + tn.GetNamespace()
	gctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	got, err := r.c.Get(gctx, &meshfedv1.GetRequest{Kind: objects.KindCluster, Name: home})
	if err != nil {
		return false, fmt.Sprintf("get cluster %s: %v", home, err)
	}
	url := got.GetObject().GetCluster().GetSpec().GetAdminUrl()
	if url == "" {
		return false, fmt.Sprintf("cluster %s has no spec.adminURL to ask whether %s is replicated", home, ns)
	}
	creds, err := clusterCredentials(got.GetObject().GetCluster())
	if err != nil {
		return false, err.Error()
	}
	admin, err := creds.AdminClient(url)
	if err != nil {
		return false, fmt.Sprintf("admin client for cluster %s: %v", home, err)
	}
	list, err := admin.Namespaces().GetNamespaceReplicationClustersWithContext(gctx, ns)
	if err != nil {
		return false, fmt.Sprintf("the replication clusters of %s on %s (%s) are unknown: %s", ns, home, url, strings.Join(strings.Fields(err.Error()), " "))
	}
	var missing []string
	for _, cl := range in.Clusters[1:] {
		if !slices.Contains(list, cl) {
			missing = append(missing, cl)
		}
	}
	if len(missing) > 0 {
		return false, fmt.Sprintf("namespace %s on %s replicates to %v, not to %s", ns, home, list, strings.Join(missing, ","))
	}
	return true, ""
}

func streamsString(ss []federation.DrillStream) string {
	var out []string
	for _, s := range ss {
		out = append(out, s.String())
	}
	return strings.Join(out, " ")
}
