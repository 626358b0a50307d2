package federation

import (
	"fmt"
	"maps"
	"path"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/meshfed/meshfed/connector"
	meshfedv1 "github.com/meshfed/meshfed/gen/meshfed/v1"
	"github.com/meshfed/meshfed/objects"
	"google.golang.org/protobuf/types/known/structpb"
)

// Runtimes an agent can advertise.
const (
	RuntimeBuiltin = "builtin"
	RuntimeExec    = "exec"
	RuntimeWasm    = "wasm"
)

// SpreadAgent in placement.spread puts no two instances of a function on
// one agent.
const SpreadAgent = "agent"

// Interpreters are the exec command names that need an interpreter
// installed on the agent: an exec function whose command[0] is one of them
// (or a path ending in one) runs only on agents that advertise it. Agents
// look these names up on their PATH.
var Interpreters = []string{"python3", "python", "node", "deno", "bun", "ruby", "perl", "php", "java", "bash", "Rscript"}

// Default requests of a function that has a resources block but leaves a
// field empty (see Resources in objects.proto). A function without a
// resources block requests nothing: it fits wherever a slot is free.
const (
	DefaultCPURequestMillis  = 100
	DefaultMemoryRequestByte = 64 << 20
)

// Demand is what one instance of a function needs from an agent.
type Demand struct {
	// Runtime is "builtin", "exec" or "wasm". Empty: any agent.
	Runtime string
	// Interpreter an exec function's command needs on the agent. Empty: none.
	Interpreter string
	// CPUMillis and MemoryBytes are the resources requested. Zero: none.
	CPUMillis, MemoryBytes int64
	// Selector lists the labels an agent must carry. Nil: any agent.
	Selector map[string]string
	// Spread: no two instances on one agent.
	Spread bool
}

// DemandOf returns what an instance of f needs. Quantities that do not
// parse (validation refuses them at apply) count as not requested.
func DemandOf(f *meshfedv1.FunctionSpec) Demand {
	var q quantities
	return q.demandOf(f)
}

// quantities memoizes parsed resource quantities within one placement
// pass: a pass meets the same few strings thousands of times.
type quantities struct {
	cpu, mem map[string]int64
}

func (q *quantities) demandOf(f *meshfedv1.FunctionSpec) Demand {
	d := Demand{Selector: f.GetPlacement().GetNodeSelector(), Spread: f.GetPlacement().GetSpread() == SpreadAgent}
	switch rt := f.GetRuntime(); {
	case rt.GetExec() != nil:
		d.Runtime = RuntimeExec
		d.Interpreter = interpreterOf(rt.GetExec().GetCommand())
	case rt.GetWasm() != nil:
		d.Runtime = RuntimeWasm
	case rt.GetBuiltin() != "":
		d.Runtime = RuntimeBuiltin
	case rt.GetConnector().GetType() == connector.ExecType:
		// An exec source or sink runs its command beside the agent (the
		// exec function runtime need not be on), so it needs only the
		// interpreter that command names.
		d.Interpreter = interpreterOf(structStrings(rt.GetConnector().GetConfig().GetFields()["command"]))
	}
	if r := f.GetResources(); r != nil {
		d.CPUMillis = q.parse(&q.cpu, r.GetCpu(), DefaultCPURequestMillis, objects.ParseCPU)
		d.MemoryBytes = q.parse(&q.mem, r.GetMemory(), DefaultMemoryRequestByte, objects.ParseMemory)
	}
	return d
}

func (q *quantities) parse(memo *map[string]int64, s string, def int64, parse func(string) (int64, error)) int64 {
	if s == "" {
		return def
	}
	if v, ok := (*memo)[s]; ok {
		return v
	}
	v, err := parse(s)
	if err != nil {
		v = 0
	}
	if *memo == nil {
		*memo = map[string]int64{}
	}
	(*memo)[s] = v
	return v
}

// structStrings returns the strings of a list value (nil for anything else).
func structStrings(v *structpb.Value) []string {
	var out []string
	for _, e := range v.GetListValue().GetValues() {
		out = append(out, e.GetStringValue())
	}
	return out
}

// interpreterOf returns the interpreter an exec command needs ("" when its
// first word is not a known interpreter).
func interpreterOf(command []string) string {
	if len(command) == 0 {
		return ""
	}
	name := path.Base(command[0])
	if slices.Contains(Interpreters, name) {
		return name
	}
	return ""
}

// Refusal kinds, in the order reasons list them when counts tie.
const (
	refuseNotReady = iota
	refuseAvoided
	refuseRuntime
	refuseInterpreter
	refuseSelector
	refuseSpread
	refuseSlots
	refuseCPU
	refuseMemory
)

// refusal is why one agent cannot take one instance.
type refusal struct {
	kind int
	// free is the agent's free CPU or memory (refuseCPU, refuseMemory).
	free int64
	// detail names the missing runtime, interpreter or label.
	detail string
}

// agentState is an agent and what placement has put on it so far.
type agentState struct {
	Agent
	// n, cpu and mem sum the instances on the agent and their requests.
	n        int
	cpu, mem int64
}

// slots is the agent's instance capacity (at least one).
func (a *agentState) slots() int {
	if a.Capacity <= 0 {
		return 1
	}
	return a.Capacity
}

// capable reports why the agent can never run d, whatever its load
// (nil: it can).
func (a *agentState) capable(d Demand) *refusal {
	if len(a.Runtimes) > 0 && d.Runtime != "" && !slices.Contains(a.Runtimes, d.Runtime) {
		return &refusal{kind: refuseRuntime, detail: d.Runtime}
	}
	if d.Interpreter != "" && len(a.Runtimes) > 0 && !slices.Contains(a.Interpreters, d.Interpreter) {
		return &refusal{kind: refuseInterpreter, detail: d.Interpreter}
	}
	for _, k := range slices.Sorted(maps.Keys(d.Selector)) {
		if v, ok := a.Labels[k]; !ok || v != d.Selector[k] {
			return &refusal{kind: refuseSelector, detail: k + "=" + d.Selector[k]}
		}
	}
	return nil
}

// fits reports why the agent cannot take one more instance of d now
// (nil: it can).
func (a *agentState) fits(d Demand) *refusal {
	if !a.Ready {
		return &refusal{kind: refuseNotReady}
	}
	if r := a.capable(d); r != nil {
		return r
	}
	if a.n >= a.slots() {
		return &refusal{kind: refuseSlots}
	}
	if a.CPUMillis > 0 && d.CPUMillis > 0 && a.cpu+d.CPUMillis > a.CPUMillis {
		return &refusal{kind: refuseCPU, free: max(a.CPUMillis-a.cpu, 0)}
	}
	if a.MemoryBytes > 0 && d.MemoryBytes > 0 && a.mem+d.MemoryBytes > a.MemoryBytes {
		return &refusal{kind: refuseMemory, free: max(a.MemoryBytes-a.mem, 0)}
	}
	return nil
}

// score is the agent's fullness after taking d: the highest of its slot,
// CPU and memory ratios. Lower is emptier.
func (a *agentState) score(d Demand) float64 {
	s := float64(a.n+1) / float64(a.slots())
	if a.CPUMillis > 0 {
		s = max(s, float64(a.cpu+d.CPUMillis)/float64(a.CPUMillis))
	}
	if a.MemoryBytes > 0 {
		s = max(s, float64(a.mem+d.MemoryBytes)/float64(a.MemoryBytes))
	}
	return s
}

func (a *agentState) add(d Demand, sign int) {
	a.n += sign
	a.cpu += int64(sign) * d.CPUMillis
	a.mem += int64(sign) * d.MemoryBytes
}

// fleet is placement's view of every agent and its load during one pass.
// The load of the assignments it was made with is counted when first
// needed (see load): a pass with nothing to place reads no load.
type fleet struct {
	byName    map[string]*agentState
	byCluster map[string][]*agentState // sorted by name
	q         quantities
	// unloaded are the assignments whose load is not counted yet.
	unloaded []*meshfedv1.Assignment
	// capableOf caches, per cluster and kind of demand, the ready agents
	// able to run it (sorted by name): readiness and capabilities do not
	// change during a pass, only loads do.
	capableOf map[capKey][]*agentState
}

type capKey struct{ cluster, runtime, interpreter, selector string }

// capable returns the ready agents of cluster that can run d.
func (f *fleet) capable(cluster string, d Demand) []*agentState {
	k := capKey{cluster: cluster, runtime: d.Runtime, interpreter: d.Interpreter}
	if len(d.Selector) > 0 {
		var b strings.Builder
		for _, key := range slices.Sorted(maps.Keys(d.Selector)) {
			b.WriteString(key + "=" + d.Selector[key] + ",")
		}
		k.selector = b.String()
	}
	if as, ok := f.capableOf[k]; ok {
		return as
	}
	var as []*agentState
	for _, a := range f.byCluster[cluster] {
		if a.Ready && a.capable(d) == nil {
			as = append(as, a)
		}
	}
	if f.capableOf == nil {
		f.capableOf = map[capKey][]*agentState{}
	}
	f.capableOf[k] = as
	return as
}

// newFleet returns the fleet of agents loaded with assignments.
func newFleet(agents []Agent, assignments []*meshfedv1.Assignment) *fleet {
	f := &fleet{byName: make(map[string]*agentState, len(agents)), byCluster: map[string][]*agentState{}, unloaded: assignments}
	for _, a := range agents {
		s := &agentState{Agent: a}
		f.byName[a.Name] = s
		f.byCluster[a.Cluster] = append(f.byCluster[a.Cluster], s)
	}
	for _, as := range f.byCluster {
		sort.Slice(as, func(i, j int) bool { return as[i].Name < as[j].Name })
	}
	return f
}

// ready returns the agent if it exists and is ready.
func (f *fleet) ready(name string) *agentState {
	if a := f.byName[name]; a != nil && a.Ready {
		return a
	}
	return nil
}

// load counts the load of the assignments the fleet was made with, once;
// everything that reads or changes agents' loads calls it first.
func (f *fleet) load() {
	as := f.unloaded
	f.unloaded = nil
	for _, a := range as {
		f.count(a, 1)
	}
}

// count adds (sign 1) or removes (sign -1) an assignment's instance from
// its agent's load, when that agent is ready.
func (f *fleet) count(a *meshfedv1.Assignment, sign int) {
	f.load()
	if ag := f.ready(a.GetSpec().GetAgent()); ag != nil {
		ag.add(f.q.demandOf(a.GetSpec().GetFunctionSpec()), sign)
	}
}

// pick returns the agent of cluster that should take one instance of d:
// among the agents that fit, the one with the fewest instances of the
// function (onAgent), then the emptiest, then the first by name. When none
// fits it returns "" and why, naming each agent considered.
func (f *fleet) pick(cluster string, d Demand, onAgent map[string]int, avoid []string) (string, string) {
	f.load()
	var best *agentState
	bestScore, bestOn := 0.0, 0
	for _, a := range f.capable(cluster, d) {
		on := onAgent[a.Name]
		if best != nil && on > bestOn || d.Spread && on > 0 || a.n >= a.slots() ||
			a.CPUMillis > 0 && d.CPUMillis > 0 && a.cpu+d.CPUMillis > a.CPUMillis ||
			a.MemoryBytes > 0 && d.MemoryBytes > 0 && a.mem+d.MemoryBytes > a.MemoryBytes ||
			len(avoid) > 0 && slices.Contains(avoid, a.Name) {
			continue
		}
		if s := a.score(d); best == nil || on < bestOn || s < bestScore {
			best, bestScore, bestOn = a, s, on
		}
	}
	if best != nil {
		return best.Name, ""
	}
	// Nothing fits: go over every agent again to say why.
	var refused []namedRefusal
	for _, a := range f.byCluster[cluster] {
		var r *refusal
		switch {
		case slices.Contains(avoid, a.Name):
			r = &refusal{kind: refuseAvoided}
		case d.Spread && onAgent[a.Name] > 0 && a.Ready:
			r = &refusal{kind: refuseSpread}
		default:
			r = a.fits(d)
		}
		if r != nil {
			refused = append(refused, namedRefusal{a.Name, *r})
		}
	}
	if len(refused) == 0 {
		return "", fmt.Sprintf("no agent registered in cluster %q", cluster)
	}
	return "", fmt.Sprintf("no agent of cluster %q can run it: %s", cluster, summarize(refused, d))
}

type namedRefusal struct {
	agent string
	refusal
}

// summarize aggregates refusals by kind (and missing runtime, interpreter
// or label): "3 agents lack python3 (a1, a2, a3); agent a4 has 256Mi
// memory free < 1Gi requested".
func summarize(rs []namedRefusal, d Demand) string {
	type group struct {
		kind    int
		detail  string
		names   []string
		maxFree int64
	}
	groups := map[string]*group{}
	for _, r := range rs {
		k := strconv.Itoa(r.kind) + "/" + r.detail
		g := groups[k]
		if g == nil {
			g = &group{kind: r.kind, detail: r.detail}
			groups[k] = g
		}
		g.names = append(g.names, r.agent)
		g.maxFree = max(g.maxFree, r.free)
	}
	list := make([]*group, 0, len(groups))
	for _, g := range groups {
		list = append(list, g)
	}
	sort.Slice(list, func(i, j int) bool {
		if len(list[i].names) != len(list[j].names) {
			return len(list[i].names) > len(list[j].names)
		}
		if list[i].kind != list[j].kind {
			return list[i].kind < list[j].kind
		}
		return list[i].detail < list[j].detail
	})
	parts := make([]string, 0, len(list))
	for _, g := range list {
		one := len(g.names) == 1
		verb := func(singular, plural string) string {
			if one {
				return singular
			}
			return plural
		}
		var what string
		switch g.kind {
		case refuseNotReady:
			what = verb("is", "are") + " not ready"
		case refuseAvoided:
			what = verb("was", "were") + " left after repeated failures"
		case refuseRuntime:
			what = verb("lacks", "lack") + " the " + g.detail + " runtime"
		case refuseInterpreter:
			what = verb("lacks", "lack") + " " + g.detail
		case refuseSelector:
			what = verb("does", "do") + " not carry the label " + g.detail + " (placement.nodeSelector)"
		case refuseSpread:
			what = verb("runs", "run") + " an instance of the function already (placement.spread: agent)"
		case refuseSlots:
			what = verb("has", "have") + " no free instance slot"
		case refuseCPU:
			what = verb("has ", "have at most ") + FormatCPU(g.maxFree) + " CPU free < " + FormatCPU(d.CPUMillis) + " requested"
		case refuseMemory:
			what = verb("has ", "have at most ") + FormatMemory(g.maxFree) + " memory free < " + FormatMemory(d.MemoryBytes) + " requested"
		}
		if one {
			parts = append(parts, "agent "+g.names[0]+" "+what)
			continue
		}
		names := g.names
		more := ""
		if len(names) > 3 {
			names, more = names[:3], ", ..."
		}
		parts = append(parts, fmt.Sprintf("%d agents %s (%s%s)", len(g.names), what, strings.Join(names, ", "), more))
	}
	return strings.Join(parts, "; ")
}

// FormatCPU writes millicores as a Kubernetes quantity ("2", "500m").
func FormatCPU(m int64) string {
	if m%1000 == 0 {
		return strconv.FormatInt(m/1000, 10)
	}
	return strconv.FormatInt(m, 10) + "m"
}

// FormatMemory writes bytes with the largest binary suffix that keeps at
// most one decimal ("1Gi", "256Mi", "1.5Gi", "100").
func FormatMemory(b int64) string {
	for _, u := range []struct {
		suffix string
		size   int64
	}{{"Ti", 1 << 40}, {"Gi", 1 << 30}, {"Mi", 1 << 20}, {"Ki", 1 << 10}} {
		if b >= u.size {
			if b%u.size == 0 {
				return strconv.FormatInt(b/u.size, 10) + u.suffix
			}
			return strconv.FormatFloat(float64(b)/float64(u.size), 'f', 1, 64) + u.suffix
		}
	}
	return strconv.FormatInt(b, 10)
}
