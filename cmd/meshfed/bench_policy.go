package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/meshfed/meshfed/bench"
	"github.com/meshfed/meshfed/client"
	meshfedv1 "github.com/meshfed/meshfed/gen/meshfed/v1"
	"github.com/meshfed/meshfed/objects"
	"github.com/meshfed/meshfed/policies"
	"github.com/spf13/cobra"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/structpb"
)

func init() { registerBench(newBenchAdmissionCmd) }

type benchAdmissionFlags struct {
	rules       int
	applies     int
	rounds      int
	concurrency []int
	meshes      int
	warmup      int
	conns       int
	inProcess   bool
	dir         string
}

func newBenchAdmissionCmd() *cobra.Command {
	var f benchAdmissionFlags
	cmd := &cobra.Command{
		Use:   "admission",
		Short: "Measure apply latency of meshes with 1,000 policy rules against none",
		Long: `Start two 3-node meshfed clusters on loopback (three "meshfed server" processes
of this binary each, or in-process servers with --in-process) holding the same
tenants, namespaces and clusters. One has no policy rules but the four Grants
the benchmark mesh cannot do without; the other has --rules rules, all of
which admission reads for every apply of the mesh: the mesh's tenant's allowed
clusters, its namespace's quotas, allowed runtimes, residency labels and flow
rules (the matching ones last), the residency of the four namespaces of other
tenants whose topics it reads and writes, and the Grants in those namespaces
(to 120 partner namespaces of 10 tenants, the matching one last).

The rules are read back through the API and counted, and a dry-run apply that
breaks one flow rule must be refused by the ruled cluster (and admitted by the
other) before and after the measurement, or the command fails.

Then, at each --concurrency, --applies applies of a four-function mesh that
crosses clusters and tenants in every function go to each cluster, spread over
--meshes mesh names, every apply changing the mesh's config: --rounds rounds,
the two clusters taking turns (and swapping the order every round) so a change
in the machine's load hits both alike. Prints ops/s, p50, p99 and max latency,
the servers' CPU time per apply (not with --in-process), and the with-rules /
none ratios.`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := f.check(); err != nil {
				return usageError{err}
			}
			_, err := runBenchAdmission(cmd.Context(), cmd.OutOrStdout(), f)
			return err
		},
	}
	fl := cmd.Flags()
	fl.IntVar(&f.rules, "rules", 1000, fmt.Sprintf("policy rules in the ruled cluster (at least %d, the fixed ones)", fixedRules(len(admissionClusters()))))
	fl.IntVar(&f.applies, "applies", 6000, "measured applies per cluster at each concurrency, split evenly over the rounds")
	fl.IntVar(&f.rounds, "rounds", 10, "turns each cluster takes at each concurrency")
	fl.IntSliceVar(&f.concurrency, "concurrency", []int{1, 16}, "numbers of concurrent writers, one level after another")
	fl.IntVar(&f.meshes, "meshes", 50, "mesh names per cluster the applies cycle through (the namespace holds this many meshes)")
	fl.IntVar(&f.warmup, "warmup", 200, "unmeasured applies per cluster before the first level (after one apply of every mesh name)")
	fl.IntVar(&f.conns, "conns", 32, "most gRPC connections the writers share (fewer when there are fewer writers)")
	fl.BoolVar(&f.inProcess, "in-process", false, "run the servers inside this process instead of as child processes")
	fl.StringVar(&f.dir, "dir", "", "directory for data and logs (default: a temporary directory, removed afterwards)")
	return cmd
}

func (f benchAdmissionFlags) check() error {
	if least := fixedRules(len(admissionClusters())); f.rules < least {
		return fmt.Errorf("--rules %d: must be at least %d", f.rules, least)
	}
	if f.rounds < 1 || f.applies < f.rounds || f.meshes < 1 || f.warmup < 0 || f.conns < 1 || len(f.concurrency) == 0 {
		return errors.New("--rounds, --meshes and --conns must be positive, --applies at least --rounds, --warmup not negative and --concurrency not empty")
	}
	for _, c := range f.concurrency {
		if c < 1 {
			return fmt.Errorf("--concurrency %d: must be positive", c)
		}
	}
	return nil
}

// The benchmark's world: tenant admissionTenant runs the meshes in
// namespace admissionNS; admissionOwners tenants own the topics they read
// and write, in namespace "shared"; partner tenants' namespaces receive the
// Grants that are not for the mesh.
const (
	admissionTenant    = "bench"
	admissionNS        = "train"
	admissionOwners    = 4
	admissionPartners  = 10 // tenants partner-00 …, each with admissionPartnerNS namespaces
	admissionPartnerNS = 12
	// admissionFunctions is the number of functions of the mesh.
	admissionFunctions = 4
	// admissionGrant is the name of the Grant that lets the mesh's namespace
	// use an owner's topics; it sorts after every other Grant's name.
	admissionGrant = "zz-bench-train"
)

// admissionResidency is the residency of the mesh's namespace; every
// cluster carries these labels. The owners' namespaces require the first two.
var admissionResidency = map[string]string{
	"region": "eu", "jurisdiction": "gdpr", "tier": "gold", "encryption": "at-rest",
	"network": "private", "audit": "on", "backup": "daily", "operator": "meshfed",
}

// admissionClusters returns the clusters: x00 … x29 and c, which only the
// rules that do not match name, then a and b, which the mesh uses.
func admissionClusters() []string {
	var out []string
	for i := range 30 {
		out = append(out, fmt.Sprintf("x%02d", i))
	}
	return append(out, "c", "b", "a")
}

// fixedRules is the number of rules of the ruled world that do not depend on
// --rules: the tenant's allowed clusters, four quotas, three runtimes, the
// namespace's residency labels and the two flow rules the mesh needs, two
// residency labels per owner namespace and the owners' Grants to the mesh's
// namespace.
func fixedRules(clusters int) int {
	return clusters + 4 + 3 + len(admissionResidency) + 2 + 2*admissionOwners + admissionOwners
}

func ownerTenant(i int) string { return fmt.Sprintf("data-%d", i) }

// ruleCount breaks down the policy rules of a world.
type ruleCount struct {
	allowedClusters, quotas, runtimes, residency, flows, grants int
}

func (r ruleCount) total() int {
	return r.allowedClusters + r.quotas + r.runtimes + r.residency + r.flows + r.grants
}

func (r ruleCount) String() string {
	return fmt.Sprintf("%d = %d flow rules + %d grants + %d allowed clusters + %d residency labels + %d runtimes + %d quotas",
		r.total(), r.flows, r.grants, r.allowedClusters, r.residency, r.runtimes, r.quotas)
}

// admissionWorld returns the objects of a world with n rules (0: none but
// the owners' Grants to the mesh's namespace), in applies that each refer
// only to objects of earlier ones.
func admissionWorld(n int) [][]*meshfedv1.Object {
	clusters := admissionClusters()
	var cl []*meshfedv1.Object
	for _, c := range clusters {
		labels := map[string]string{"name": c}
		for k, v := range admissionResidency {
			labels[k] = v
		}
		cl = append(cl, objects.Wrap(&meshfedv1.Cluster{ApiVersion: objects.APIVersion, Kind: objects.KindCluster,
			Metadata: &meshfedv1.ObjectMeta{Name: c, Labels: labels},
			Spec:     &meshfedv1.ClusterSpec{Region: "eu", ServiceUrl: "pulsar://" + c + ".invalid:6650"},
		}))
	}
	ruled := n > 0
	var tenants, namespaces, grants []*meshfedv1.Object
	ts := &meshfedv1.TenantSpec{}
	ns := &meshfedv1.NamespaceSpec{}
	ownerSpec := func() *meshfedv1.NamespaceSpec { return nil }
	flows, others := 0, 0
	if ruled {
		ts.AllowedClusters = clusters // a and b last
		ns.Quotas = &meshfedv1.NamespaceQuotas{Meshes: 100000, Functions: 1000000, Instances: 10000000, ReplicasPerFunction: 64}
		ns.AllowedRuntimes = []string{"exec", "wasm", "builtin"}
		ns.Residency = admissionResidency
		ownerSpec = func() *meshfedv1.NamespaceSpec {
			return &meshfedv1.NamespaceSpec{Residency: map[string]string{"region": "eu", "jurisdiction": "gdpr"}}
		}
		rest := n - fixedRules(len(clusters))
		flows = rest / 2
		others = rest - flows
		// Flow rules between the clusters the mesh does not use (never from
		// a or b, so a -> c stays refused), then the two it needs.
		var pairs []*meshfedv1.FlowRule
		for _, from := range clusters[:len(clusters)-2] {
			for _, to := range clusters[:len(clusters)-2] {
				if from != to {
					pairs = append(pairs, &meshfedv1.FlowRule{From: from, To: to})
				}
			}
		}
		for i := range flows {
			ns.Flows = append(ns.Flows, pairs[i%len(pairs)])
		}
		ns.Flows = append(ns.Flows, &meshfedv1.FlowRule{From: "a", To: "b"}, &meshfedv1.FlowRule{From: "b", To: "a"})
	}
	tenants = append(tenants, tenantObject(admissionTenant, ts))
	namespaces = append(namespaces, namespaceObject(admissionTenant, admissionNS, ns))
	var partners [][2]string
	for p := range admissionPartners {
		t := fmt.Sprintf("partner-%02d", p)
		tenants = append(tenants, tenantObject(t, nil))
		for j := range admissionPartnerNS {
			name := fmt.Sprintf("ns-%02d", j)
			namespaces = append(namespaces, namespaceObject(t, name, nil))
			partners = append(partners, [2]string{t, name})
		}
	}
	grant := func(owner int, name string, to [2]string, actions ...string) *meshfedv1.Object {
		return objects.Wrap(&meshfedv1.Grant{ApiVersion: objects.APIVersion, Kind: objects.KindGrant,
			Metadata: &meshfedv1.ObjectMeta{Tenant: ownerTenant(owner), Namespace: "shared", Name: name},
			Spec:     &meshfedv1.GrantSpec{Grantee: &meshfedv1.GrantSubject{Tenant: to[0], Namespace: to[1]}, Actions: actions},
		})
	}
	for i := range admissionOwners {
		tenants = append(tenants, tenantObject(ownerTenant(i), nil))
		namespaces = append(namespaces, namespaceObject(ownerTenant(i), "shared", ownerSpec()))
		// The owners share the other Grants out evenly; each owner's go to
		// partner namespaces in turn.
		mine := others / admissionOwners
		if i < others%admissionOwners {
			mine++
		}
		for g := range mine {
			actions := []string{"produce", "consume"}[g%2:]
			grants = append(grants, grant(i, fmt.Sprintf("g-%04d", g), partners[(g+i)%len(partners)], actions...))
		}
		grants = append(grants, grant(i, admissionGrant, [2]string{admissionTenant, admissionNS}, "produce", "consume"))
	}
	return [][]*meshfedv1.Object{cl, tenants, namespaces, grants}
}

func tenantObject(name string, spec *meshfedv1.TenantSpec) *meshfedv1.Object {
	return objects.Wrap(&meshfedv1.Tenant{ApiVersion: objects.APIVersion, Kind: objects.KindTenant,
		Metadata: &meshfedv1.ObjectMeta{Name: name}, Spec: spec})
}

func namespaceObject(tenant, name string, spec *meshfedv1.NamespaceSpec) *meshfedv1.Object {
	return objects.Wrap(&meshfedv1.Namespace{ApiVersion: objects.APIVersion, Kind: objects.KindNamespace,
		Metadata: &meshfedv1.ObjectMeta{Tenant: tenant, Name: name}, Spec: spec})
}

// admissionMesh is the mesh the benchmark applies: function i reads its own
// namespace's records and owner i's features on cluster a (b for odd i) and
// writes updates to owner i+1 on the other cluster, failing over to c. seq
// goes into the config, so every apply changes the mesh. outCluster, when
// not empty, replaces function 0's output cluster (the probe).
func admissionMesh(name string, seq int64, outCluster string) *meshfedv1.Object {
	var fns []*meshfedv1.FunctionSpec
	for i := range admissionFunctions {
		in, out := "a", "b"
		if i%2 == 1 {
			in, out = "b", "a"
		}
		if i == 0 && outCluster != "" {
			out = outCluster
		}
		cfg, _ := structpb.NewStruct(map[string]any{"seq": float64(seq), "learningRate": 0.01})
		fns = append(fns, &meshfedv1.FunctionSpec{
			Name:                fmt.Sprintf("f%d", i),
			Runtime:             &meshfedv1.Runtime{Kind: &meshfedv1.Runtime_Builtin{Builtin: "identity"}},
			Replicas:            2,
			MaxReplicas:         4,
			ProcessingGuarantee: "effectively_once",
			Input: &meshfedv1.FunctionInput{Cluster: in, Topics: []string{
				fmt.Sprintf("persistent://%s/%s/records-%d", admissionTenant, admissionNS, i),
				fmt.Sprintf("persistent://%s/shared/features", ownerTenant(i)),
			}},
			Output:   &meshfedv1.FunctionOutput{Cluster: out, Topic: fmt.Sprintf("persistent://%s/shared/updates", ownerTenant((i+1)%admissionOwners))},
			Failover: &meshfedv1.Failover{Clusters: []string{"c"}},
			Config:   cfg,
		})
	}
	return objects.Wrap(&meshfedv1.FunctionMesh{ApiVersion: objects.APIVersion, Kind: objects.KindFunctionMesh,
		Metadata: &meshfedv1.ObjectMeta{Tenant: admissionTenant, Namespace: admissionNS, Name: name},
		Spec:     &meshfedv1.FunctionMeshSpec{Functions: fns},
	})
}

// admissionCluster is one of the two clusters under test.
type admissionCluster struct {
	name    string // "none" or "N rules"
	rules   int
	cluster bench.Cluster
	meter   bench.CPUMeter
	addrs   []string
	seq     atomic.Int64 // last config seq applied; every apply takes the next
	read    ruleCount
	probe   error // answer to the probe before the measurement
}

// admissionResult is one cluster at one concurrency, over every round.
type admissionResult struct {
	rules, concurrency int
	applies, errors    int
	firstErr           error
	elapsed, cpu       time.Duration
	lat                []time.Duration
	p50, p99, max      time.Duration
}

func (r *admissionResult) opsPerSec() float64 {
	if r.elapsed <= 0 {
		return 0
	}
	return float64(r.applies) / r.elapsed.Seconds()
}

func (r *admissionResult) cpuPerOp() time.Duration {
	if r.applies == 0 {
		return 0
	}
	return r.cpu / time.Duration(r.applies)
}

// admissionReport is what runBenchAdmission measured.
type admissionReport struct {
	none, ruled *admissionCluster
	results     []*admissionResult // none then ruled, for each concurrency
	probeAfter  error              // the ruled cluster's answer to the probe after the measurement
}

func runBenchAdmission(ctx context.Context, out io.Writer, f benchAdmissionFlags) (*admissionReport, error) {
	dir, cleanup, err := benchDir(f.dir, "meshfed-bench-admission-")
	if err != nil {
		return nil, err
	}
	defer cleanup()
	mode := "3 `meshfed server` processes"
	if f.inProcess {
		mode = "3 in-process servers"
	}
	fmt.Fprintf(out, "# meshfed bench admission: 2 clusters of %s on loopback (no rules / %d rules), %d-function cross-tenant mesh, %d meshes per cluster, %d applies per cluster and level in %d rounds, %d CPUs, %s\n",
		mode, f.rules, admissionFunctions, f.meshes, f.applies, f.rounds, runtime.NumCPU(), runtime.Version())
	rep := &admissionReport{none: &admissionCluster{name: "none"}, ruled: &admissionCluster{name: fmt.Sprintf("%d rules", f.rules), rules: f.rules}}
	for _, c := range []*admissionCluster{rep.none, rep.ruled} {
		if err := c.start(ctx, dir, f); err != nil {
			return nil, fmt.Errorf("%s: %w", c.name, err)
		}
		defer c.cluster.Close()
	}
	for _, c := range []*admissionCluster{rep.none, rep.ruled} {
		if err := c.load(ctx); err != nil {
			return nil, fmt.Errorf("%s: %w", c.name, err)
		}
	}
	fmt.Fprintf(out, "# rules read back through the API: none: %s; ruled: %s\n", rep.none.read, rep.ruled.read)
	fmt.Fprintf(out, "# probe (a dry-run apply whose function 0 writes from a to c, a flow no rule allows): none: %s; ruled: %s\n",
		probeText(rep.none.probe), probeText(rep.ruled.probe))
	if rep.none.probe != nil || !refusedByFlows(rep.ruled.probe) {
		return rep, errors.New("the rules do not decide as set up: the probe must be admitted without rules and refused by namespace.flows with them")
	}
	for _, c := range []*admissionCluster{rep.none, rep.ruled} {
		if err := c.warm(ctx, f); err != nil {
			return rep, fmt.Errorf("%s: warm-up: %w", c.name, err)
		}
	}
	for _, conc := range f.concurrency {
		none := &admissionResult{rules: 0, concurrency: conc}
		ruled := &admissionResult{rules: f.rules, concurrency: conc}
		for round := range f.rounds {
			// Applies of this round: the rounds share --applies evenly.
			n := f.applies/f.rounds + btoi(round < f.applies%f.rounds)
			order := []*admissionCluster{rep.none, rep.ruled}
			res := []*admissionResult{none, ruled}
			if round%2 == 1 {
				slices.Reverse(order)
				slices.Reverse(res)
			}
			for i, c := range order {
				r, err := c.measure(ctx, conc, n, f.conns, f.meshes)
				if err != nil {
					return rep, fmt.Errorf("%s: %w", c.name, err)
				}
				fmt.Fprintf(out, "round %d c=%d %s: %d applies, %.0f/s, p50 %s p99 %s (%d errors)\n",
					round+1, conc, c.name, r.applies, r.opsPerSec(), ms(bench.Percentile(r.lat, 0.5)), ms(bench.Percentile(r.lat, 0.99)), r.errors)
				res[i].add(r)
			}
		}
		for _, r := range []*admissionResult{none, ruled} {
			r.p50, r.p99, r.max = bench.Percentile(r.lat, 0.5), bench.Percentile(r.lat, 0.99), bench.Percentile(r.lat, 1)
			if r.firstErr != nil {
				fmt.Fprintf(out, "  c=%d %d rules: first error: %v\n", conc, r.rules, r.firstErr)
			}
		}
		rep.results = append(rep.results, none, ruled)
	}
	rep.probeAfter = probe(ctx, rep.ruled.addrs)
	fmt.Fprintf(out, "# probe after the measurement: ruled: %s\n", probeText(rep.probeAfter))
	if !refusedByFlows(rep.probeAfter) {
		return rep, errors.New("the ruled cluster admitted the probe after the measurement")
	}
	fmt.Fprintln(out)
	if err := writeAdmissionTable(out, rep.results); err != nil {
		return rep, err
	}
	return rep, nil
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// ms formats a latency in milliseconds with two decimals.
func ms(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond)) }

func (c *admissionCluster) start(ctx context.Context, dir string, f benchAdmissionFlags) error {
	cdir := filepath.Join(dir, strings.ReplaceAll(c.name, " ", "-"))
	if err := os.MkdirAll(cdir, 0o755); err != nil {
		return err
	}
	var err error
	if f.inProcess {
		c.cluster, err = bench.StartInProcess(ctx, cdir, 3, nil)
	} else {
		exe, eerr := os.Executable()
		if eerr != nil {
			return eerr
		}
		c.cluster, err = bench.StartProcesses(ctx, exe, cdir, 3, nil)
	}
	if err != nil {
		return err
	}
	c.meter, _ = c.cluster.(bench.CPUMeter)
	c.addrs = c.cluster.Addrs()
	return nil
}

// load writes the cluster's world, reads its rules back and sends the probe.
func (c *admissionCluster) load(ctx context.Context) error {
	cl, err := client.New(c.addrs)
	if err != nil {
		return err
	}
	defer cl.Close()
	for _, objs := range admissionWorld(c.rules) {
		if _, err := cl.Apply(ctx, &meshfedv1.ApplyRequest{Objects: objs}); err != nil {
			return fmt.Errorf("set up %d objects: %w", len(objs), err)
		}
	}
	if c.read, err = readRules(ctx, cl); err != nil {
		return err
	}
	want := c.rules
	if want == 0 {
		want = admissionOwners // the Grants the mesh needs
	}
	if c.read.total() != want {
		return fmt.Errorf("%d rules read back, want %d: %s", c.read.total(), want, c.read)
	}
	c.probe = probe(ctx, c.addrs)
	return nil
}

// readRules counts the policy rules of every tenant, namespace and Grant
// the API lists.
func readRules(ctx context.Context, cl *client.Client) (ruleCount, error) {
	var all []*meshfedv1.Object
	for _, kind := range []string{objects.KindTenant, objects.KindNamespace, objects.KindGrant} {
		resp, err := cl.List(ctx, &meshfedv1.ListRequest{Kind: kind})
		if err != nil {
			return ruleCount{}, fmt.Errorf("list %s: %w", kind, err)
		}
		all = append(all, resp.GetObjects()...)
	}
	return countRules(all), nil
}

// countRules counts the policy rules of objs: every allowed cluster of a
// tenant; every quota set, allowed runtime, residency label and flow rule
// of a namespace; every Grant.
func countRules(objs []*meshfedv1.Object) ruleCount {
	var r ruleCount
	for _, o := range objs {
		switch k := o.GetKind().(type) {
		case *meshfedv1.Object_Tenant:
			r.allowedClusters += len(k.Tenant.GetSpec().GetAllowedClusters())
		case *meshfedv1.Object_Namespace:
			s := k.Namespace.GetSpec()
			q := s.GetQuotas()
			for _, v := range []int32{q.GetMeshes(), q.GetFunctions(), q.GetInstances(), q.GetReplicasPerFunction()} {
				r.quotas += btoi(v > 0)
			}
			r.runtimes += len(s.GetAllowedRuntimes())
			r.residency += len(s.GetResidency())
			r.flows += len(s.GetFlows())
		case *meshfedv1.Object_Grant:
			r.grants++
		}
	}
	return r
}

// probe dry-runs a mesh whose function 0 writes from cluster a to c, which
// no flow rule allows and nothing else forbids.
func probe(ctx context.Context, addrs []string) error {
	cl, err := client.New(addrs)
	if err != nil {
		return err
	}
	defer cl.Close()
	_, err = cl.Apply(ctx, &meshfedv1.ApplyRequest{DryRun: true, Objects: []*meshfedv1.Object{admissionMesh("probe", 0, "c")}})
	return err
}

// refusedByFlows reports whether err is the refusal of the probe by a flow
// rule, and by nothing else.
func refusedByFlows(err error) bool {
	st, ok := status.FromError(err)
	if !ok || st.Code() != codes.PermissionDenied {
		return false
	}
	lines := strings.Split(strings.TrimSpace(st.Message()), "\n")
	return len(lines) == 1 && strings.HasSuffix(lines[0], "("+string(policies.RuleFlows)+")")
}

func probeText(err error) string {
	if err == nil {
		return "admitted"
	}
	if st, ok := status.FromError(err); ok {
		return fmt.Sprintf("refused, %s: %s", st.Code(), st.Message())
	}
	return "failed: " + err.Error()
}

// applier applies the benchmark mesh through fail-over clients, each
// preferring a different server in turn (so applies arrive at followers as
// well as at the leader).
type applier struct {
	clients []*client.Client
}

func newApplier(addrs []string, conns int) (*applier, error) {
	a := &applier{}
	for i := range conns {
		rot := append(append([]string(nil), addrs[i%len(addrs):]...), addrs[:i%len(addrs)]...)
		c, err := client.New(rot)
		if err != nil {
			a.close()
			return nil, err
		}
		a.clients = append(a.clients, c)
	}
	return a, nil
}

func (a *applier) close() {
	for _, c := range a.clients {
		c.Close()
	}
}

// run makes n applies with concurrency workers, mesh names cycling over
// meshes, and returns every successful apply's latency.
func (c *admissionCluster) run(ctx context.Context, a *applier, concurrency, n, meshes int) *admissionResult {
	r := &admissionResult{rules: c.rules, concurrency: concurrency}
	var (
		next atomic.Int64
		mu   sync.Mutex
		wg   sync.WaitGroup
	)
	start := time.Now()
	for w := range concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cl := a.clients[w%len(a.clients)]
			var mine []time.Duration
			var errs int
			var first error
			for {
				i := next.Add(1) - 1
				if i >= int64(n) || ctx.Err() != nil {
					break
				}
				obj := admissionMesh(fmt.Sprintf("train-%03d", i%int64(meshes)), c.seq.Add(1), "")
				t0 := time.Now()
				_, err := cl.Apply(ctx, &meshfedv1.ApplyRequest{Objects: []*meshfedv1.Object{obj}})
				d := time.Since(t0)
				if err != nil {
					errs++
					first = cmpOr(first, err)
					continue
				}
				mine = append(mine, d)
			}
			mu.Lock()
			r.lat = append(r.lat, mine...)
			r.errors += errs
			r.firstErr = cmpOr(r.firstErr, first)
			mu.Unlock()
		}()
	}
	wg.Wait()
	r.elapsed = time.Since(start)
	r.applies = len(r.lat)
	return r
}

func cmpOr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

// warm applies every mesh name once, then f.warmup more applies.
func (c *admissionCluster) warm(ctx context.Context, f benchAdmissionFlags) error {
	a, err := newApplier(c.addrs, min(f.conns, 8))
	if err != nil {
		return err
	}
	defer a.close()
	for _, n := range []int{f.meshes, f.warmup} {
		if r := c.run(ctx, a, min(8, max(n, 1)), n, f.meshes); r.firstErr != nil {
			return r.firstErr
		}
	}
	return ctx.Err()
}

// measure makes n measured applies at concurrency, with the servers' CPU
// time when the cluster reports it.
func (c *admissionCluster) measure(ctx context.Context, concurrency, n, conns, meshes int) (*admissionResult, error) {
	a, err := newApplier(c.addrs, min(concurrency, conns))
	if err != nil {
		return nil, err
	}
	defer a.close()
	var cpu0 time.Duration
	meter := c.meter
	if meter != nil {
		if cpu0, err = meter.CPUTime(); err != nil {
			meter = nil
		}
	}
	r := c.run(ctx, a, concurrency, n, meshes)
	if meter != nil {
		if cpu1, err := meter.CPUTime(); err == nil {
			r.cpu = cpu1 - cpu0
		}
	}
	return r, ctx.Err()
}

// add folds one round into r.
func (r *admissionResult) add(o *admissionResult) {
	r.applies += o.applies
	r.errors += o.errors
	r.firstErr = cmpOr(r.firstErr, o.firstErr)
	r.elapsed += o.elapsed
	r.cpu += o.cpu
	r.lat = append(r.lat, o.lat...)
}

// writeAdmissionTable prints the results as Markdown: one row per cluster
// and concurrency, then the with-rules / none ratios per concurrency.
func writeAdmissionTable(w io.Writer, results []*admissionResult) error {
	cpu := func(r *admissionResult) string {
		if r.cpu <= 0 {
			return "n/a"
		}
		return fmt.Sprintf("%d µs", r.cpuPerOp().Microseconds())
	}
	tw := tabwriter.NewWriter(w, 0, 0, 1, ' ', 0)
	fmt.Fprintln(tw, "| rules\t| clients\t| applies\t| errors\t| applies/s\t| p50\t| p99\t| max\t| server CPU/apply\t|")
	fmt.Fprintln(tw, "|---:\t|---:\t|---:\t|---:\t|---:\t|---:\t|---:\t|---:\t|---:\t|")
	for _, r := range results {
		fmt.Fprintf(tw, "| %d\t| %d\t| %d\t| %d\t| %.0f\t| %s\t| %s\t| %s\t| %s\t|\n",
			r.rules, r.concurrency, r.applies, r.errors, r.opsPerSec(), ms(r.p50), ms(r.p99), ms(r.max), cpu(r))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 0, 1, ' ', 0)
	fmt.Fprintln(tw, "| clients\t| p50 rules/none\t| p99 rules/none\t| applies/s rules/none\t| CPU/apply rules/none\t|")
	fmt.Fprintln(tw, "|---:\t|---:\t|---:\t|---:\t|---:\t|")
	for i := 0; i+1 < len(results); i += 2 {
		none, ruled := results[i], results[i+1]
		cpuRatio := "n/a"
		if none.cpu > 0 && ruled.cpu > 0 {
			cpuRatio = fmt.Sprintf("%.2f", float64(ruled.cpuPerOp())/float64(none.cpuPerOp()))
		}
		fmt.Fprintf(tw, "| %d\t| %s\t| %s\t| %s\t| %s\t|\n", none.concurrency,
			ratio(ruled.p50, none.p50), ratio(ruled.p99, none.p99), ratioF(ruled.opsPerSec(), none.opsPerSec()), cpuRatio)
	}
	return tw.Flush()
}

func ratio(a, b time.Duration) string { return ratioF(float64(a), float64(b)) }

func ratioF(a, b float64) string {
	if b <= 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.2f", a/b)
}
