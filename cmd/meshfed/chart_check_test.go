package main

// What the rendered chart must say: the checks TestChartRendersStrictObjects
// runs on each values set.

import (
	"crypto/x509"
	"fmt"
	"net"
	"net/url"
	"path"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/meshfed/meshfed/controlplane"
	"github.com/meshfed/meshfed/security"
	"github.com/spf13/cobra"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/validation"
)

// certificate is cert-manager.io/v1 Certificate, with the spec fields the
// chart writes (names and types as cert-manager's CRD defines them).
type certificate struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		SecretName string `json:"secretName"`
		CommonName string `json:"commonName"`
		Subject    struct {
			Organizations       []string `json:"organizations"`
			OrganizationalUnits []string `json:"organizationalUnits"`
		} `json:"subject"`
		URIs        []string `json:"uris"`
		DNSNames    []string `json:"dnsNames"`
		IPAddresses []string `json:"ipAddresses"`
		Usages      []string `json:"usages"`
		Duration    string   `json:"duration"`
		RenewBefore string   `json:"renewBefore"`
		PrivateKey  struct {
			Algorithm      string `json:"algorithm"`
			Size           int    `json:"size"`
			Encoding       string `json:"encoding"`
			RotationPolicy string `json:"rotationPolicy"`
		} `json:"privateKey"`
		IssuerRef struct {
			Name  string `json:"name"`
			Kind  string `json:"kind"`
			Group string `json:"group"`
		} `json:"issuerRef"`
	} `json:"spec"`
}

// serviceMonitor is monitoring.coreos.com/v1 ServiceMonitor, with the spec
// fields the chart writes.
type serviceMonitor struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		Selector          metav1.LabelSelector `json:"selector"`
		NamespaceSelector struct {
			MatchNames []string `json:"matchNames"`
		} `json:"namespaceSelector"`
		Endpoints []struct {
			Port          string `json:"port"`
			Path          string `json:"path"`
			Interval      string `json:"interval"`
			ScrapeTimeout string `json:"scrapeTimeout"`
		} `json:"endpoints"`
	} `json:"spec"`
}

// pulsarFiles are the file names the chart gives an agent's credentials
// (values key => file under /etc/meshfed/pulsar).
var pulsarFiles = map[string]string{
	"token": "token", "oauth2Key": "oauth2-credentials.json", "tlsCert": "tls.crt",
	"tlsKey": "tls.key", "ca": "ca.crt", "password": "password",
}

// chartView indexes a rendering's objects.
type chartView struct {
	rc           *renderedChart
	services     map[string]*corev1.Service
	statefulSets []*appsv1.StatefulSet
	deployments  []*appsv1.Deployment
	pdbs         []*policyv1.PodDisruptionBudget
	certs        map[string]*certificate // by secretName
	monitors     []*serviceMonitor
}

func (v *chartView) value(path ...string) any {
	var cur any = v.rc.values
	for _, p := range path {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		cur = m[p]
	}
	return cur
}

func (v *chartView) tlsEnabled() bool  { b, ok := v.value("tls", "enabled").(bool); return !ok || b }
func (v *chartView) authEnabled() bool { b, ok := v.value("server", "auth").(bool); return !ok || b }
func (v *chartView) certManager() bool { return v.value("tls", "source") == "certManager" }
func (v *chartView) replicas() int {
	if n, ok := v.value("server", "replicas").(float64); ok {
		return int(n)
	}
	return 3
}
func (v *chartView) agents() []map[string]any {
	var out []map[string]any
	list, _ := v.value("agents").([]any)
	for _, a := range list {
		out = append(out, a.(map[string]any))
	}
	return out
}

func checkChart(t *testing.T, rc *renderedChart) {
	v := &chartView{rc: rc, services: map[string]*corev1.Service{}, certs: map[string]*certificate{}}
	seen := map[string]bool{}
	for _, o := range rc.objs {
		var kind string
		var meta metav1.Object
		switch x := o.obj.(type) {
		case *corev1.Service:
			kind, meta = "Service", x
			v.services[x.Name] = x
			if errs := validation.IsDNS1035Label(x.Name); len(errs) > 0 {
				t.Errorf("Service %q: %v", x.Name, errs)
			}
		case *appsv1.StatefulSet:
			kind, meta = "StatefulSet", x
			v.statefulSets = append(v.statefulSets, x)
		case *appsv1.Deployment:
			kind, meta = "Deployment", x
			v.deployments = append(v.deployments, x)
		case *policyv1.PodDisruptionBudget:
			kind, meta = "PodDisruptionBudget", x
			v.pdbs = append(v.pdbs, x)
		case *corev1.ServiceAccount:
			kind, meta = "ServiceAccount", x
			if x.AutomountServiceAccountToken == nil || *x.AutomountServiceAccountToken {
				t.Errorf("ServiceAccount %s mounts its token: meshfed never calls the Kubernetes API", x.Name)
			}
		case nil:
			switch c := o.custom.(type) {
			case *certificate:
				kind, meta = "Certificate", c
				v.certs[c.Spec.SecretName] = c
			case *serviceMonitor:
				kind, meta = "ServiceMonitor", c
				v.monitors = append(v.monitors, c)
			}
		default:
			t.Errorf("%s: unexpected kind %T", o, o.obj)
			continue
		}
		key := kind + "/" + meta.GetName()
		if seen[key] {
			t.Errorf("%s rendered twice", key)
		}
		seen[key] = true
		if errs := validation.IsDNS1123Subdomain(meta.GetName()); len(errs) > 0 {
			t.Errorf("%s: name: %v", key, errs)
		}
		if meta.GetNamespace() != chartNamespace {
			t.Errorf("%s: namespace %q, want the release's %q", key, meta.GetNamespace(), chartNamespace)
		}
	}
	if len(v.statefulSets) != 1 {
		t.Fatalf("want one StatefulSet (the servers), got %d", len(v.statefulSets))
	}
	checkServers(t, v, v.statefulSets[0])
	if len(v.deployments) != len(v.agents()) {
		t.Errorf("want one agent Deployment per agents entry (%d), got %d", len(v.agents()), len(v.deployments))
	}
	for i, d := range v.deployments {
		if i < len(v.agents()) {
			checkAgent(t, v, d, v.agents()[i])
		}
	}
	wantCerts := 0
	if v.tlsEnabled() && v.certManager() {
		clients, _ := v.value("tls", "certManager", "clients").([]any)
		wantCerts = v.replicas() + len(v.agents()) + len(clients)
	}
	if len(v.certs) != wantCerts {
		t.Errorf("want %d cert-manager Certificates, got %d", wantCerts, len(v.certs))
	}
	for _, c := range v.certs {
		checkCertificateSpec(t, c)
	}
	checkMonitors(t, v)
}

// checkServers checks the StatefulSet, its Services and PDB, and parses
// each replica's command line as the kubelet would run it.
func checkServers(t *testing.T, v *chartView, ss *appsv1.StatefulSet) {
	t.Helper()
	if ss.Spec.PodManagementPolicy != appsv1.ParallelPodManagement {
		t.Errorf("StatefulSet podManagementPolicy %q, want Parallel", ss.Spec.PodManagementPolicy)
	}
	if ss.Spec.Replicas == nil || int(*ss.Spec.Replicas) != v.replicas() {
		t.Errorf("StatefulSet replicas %v, want %d", ss.Spec.Replicas, v.replicas())
	}
	pod := ss.Spec.Template
	if sel, err := metav1.LabelSelectorAsSelector(ss.Spec.Selector); err != nil || !sel.Matches(labels.Set(pod.Labels)) {
		t.Errorf("StatefulSet selector does not select its pods (%v)", err)
	}
	headless := v.services[ss.Spec.ServiceName]
	if headless == nil {
		t.Fatalf("StatefulSet serviceName %q: no such Service rendered", ss.Spec.ServiceName)
	}
	if headless.Spec.ClusterIP != corev1.ClusterIPNone || !headless.Spec.PublishNotReadyAddresses {
		t.Errorf("Service %s: want headless (clusterIP None) publishing not-ready pods: servers resolve each other before any is ready", headless.Name)
	}
	checkSelects(t, "Service "+headless.Name, headless.Spec.Selector, pod.Labels)
	if len(ss.Spec.VolumeClaimTemplates) != 1 || ss.Spec.VolumeClaimTemplates[0].Name != "data" {
		t.Errorf("want one volumeClaimTemplate named data, got %+v", ss.Spec.VolumeClaimTemplates)
	}
	pdbOK := false
	for _, p := range v.pdbs {
		sel, err := metav1.LabelSelectorAsSelector(p.Spec.Selector)
		if err == nil && sel.Matches(labels.Set(pod.Labels)) && p.Spec.MaxUnavailable != nil && p.Spec.MaxUnavailable.IntValue() == 1 {
			pdbOK = true
		}
	}
	if !pdbOK {
		t.Error("no PodDisruptionBudget with maxUnavailable 1 selects the servers")
	}
	checkPodSecurity(t, "StatefulSet", &pod.Spec)
	if len(pod.Spec.Containers) != 1 {
		t.Fatalf("server pod: want one container, got %d", len(pod.Spec.Containers))
	}
	c := pod.Spec.Containers[0]
	ports := containerPorts(t, c)
	checkProbes(t, "server", c, ports["http"])

	var client *corev1.Service
	for _, s := range v.services {
		if s != headless && s.Labels["app.kubernetes.io/component"] == "server" {
			client = s
		}
	}
	if client == nil {
		t.Fatal("no client Service for the servers")
	}
	checkSelects(t, "Service "+client.Name, client.Spec.Selector, pod.Labels)
	checkServicePorts(t, headless, ports)
	checkServicePorts(t, client, ports)

	for i := range v.replicas() {
		podName := fmt.Sprintf("%s-%d", ss.Name, i)
		env := map[string]string{}
		for _, e := range c.Env {
			switch {
			case e.ValueFrom != nil && e.ValueFrom.FieldRef != nil && e.ValueFrom.FieldRef.FieldPath == "metadata.name":
				env[e.Name] = podName
			case e.ValueFrom == nil:
				x, err := podArgs([]string{e.Value}, env)
				if err != nil {
					t.Fatalf("env %s: %v", e.Name, err)
				}
				env[e.Name] = x[0]
			}
		}
		args, err := podArgs(c.Args, env)
		if err != nil {
			t.Fatalf("%s: %v", podName, err)
		}
		if len(c.Command) != 1 || path.Base(c.Command[0]) != "meshfed" {
			t.Errorf("server command %q, want the meshfed binary", c.Command)
		}
		cmd, err := parseCommandLine(args)
		if err != nil {
			t.Fatalf("%s: the rendered command line does not parse: %v\n%q", podName, err, args)
		}
		if cmd.Name() != "server" {
			t.Fatalf("%s runs meshfed %s, want server", podName, cmd.Name())
		}
		flag := flagValue(t, cmd)
		host := fmt.Sprintf("%s.%s.%s.svc.cluster.local", podName, headless.Name, chartNamespace)
		cfg := controlplane.Config{
			RaftAddr: flag("raft-addr"), RaftAdvertiseAddr: flag("raft-advertise-addr"),
			GRPCAddr: flag("grpc-addr"), GRPCAdvertiseAddr: flag("grpc-advertise-addr"),
		}
		if err := cfg.CheckAddrs(); err != nil {
			t.Errorf("%s: %v", podName, err)
		}
		if flag("node-id") != podName {
			t.Errorf("%s: --node-id %q, want the pod's name", podName, flag("node-id"))
		}
		for name, port := range map[string]int32{"raft": ports["raft"], "grpc": ports["grpc"]} {
			want := net.JoinHostPort(host, strconv.Itoa(int(port)))
			if got := flag(name + "-advertise-addr"); got != want {
				t.Errorf("%s: --%s-advertise-addr %q, want the pod's stable name %q", podName, name, got, want)
			}
			if bindPort(t, flag(name+"-addr")) != port {
				t.Errorf("%s: --%s-addr %q does not bind containerPort %d", podName, name, flag(name+"-addr"), port)
			}
		}
		if bindPort(t, flag("http-addr")) != ports["http"] {
			t.Errorf("%s: --http-addr %q is not the probed port %d", podName, flag("http-addr"), ports["http"])
		}
		ic, err := controlplane.ParseInitialCluster(flag("initial-cluster"))
		if err != nil {
			t.Fatalf("%s: --initial-cluster: %v", podName, err)
		}
		if len(ic) != v.replicas() || ic[podName] != flag("raft-advertise-addr") {
			t.Errorf("%s: --initial-cluster %v: want %d voters, this pod at its advertised name", podName, ic, v.replicas())
		}
		checkMounted(t, podName, &pod.Spec, c, []string{flag("data-dir")}, "data")
		if got, _ := cmd.Flags().GetBool("auth"); got != v.authEnabled() {
			t.Errorf("%s: --auth %v, want %v", podName, got, v.authEnabled())
		}
		if !v.tlsEnabled() {
			if flag("tls-cert") != "" {
				t.Errorf("%s: --tls-cert set with tls.enabled false", podName)
			}
			continue
		}
		files := []string{flag("tls-cert"), flag("tls-key"), flag("tls-ca")}
		secret := checkMounted(t, podName, &pod.Spec, c, files, "tls")
		if secret != podName+"-tls" {
			t.Errorf("%s: its certificate comes from Secret %q, want %s-tls", podName, secret, podName)
		}
		if env["MESHFED_TLS_CERT"] != flag("tls-cert") || env["MESHFED_SERVER"] != net.JoinHostPort("localhost", strconv.Itoa(int(ports["grpc"]))) {
			t.Errorf("%s: the CLI environment (MESHFED_*) does not match the server's flags: %v", podName, env)
		}
		if v.certManager() {
			cert := v.certs[secret]
			if cert == nil {
				t.Fatalf("%s: no Certificate writes Secret %s", podName, secret)
			}
			id := certIdentity(t, cert)
			if id.Role != security.RoleServer || id.Name != flag("node-id") {
				t.Errorf("%s: certificate identity %+v, want server %s", podName, id, flag("node-id"))
			}
			for _, name := range []string{host, client.Name + "." + chartNamespace + ".svc.cluster.local", "localhost"} {
				if !slices.Contains(cert.Spec.DNSNames, name) {
					t.Errorf("%s: certificate dnsNames %v lack %s (peers and clients verify it)", podName, cert.Spec.DNSNames, name)
				}
			}
		}
	}
}

// checkAgent checks an agent Deployment and parses its command line.
func checkAgent(t *testing.T, v *chartView, d *appsv1.Deployment, want map[string]any) {
	t.Helper()
	if d.Spec.Replicas == nil || *d.Spec.Replicas != 1 || d.Spec.Strategy.Type != appsv1.RecreateDeploymentStrategyType {
		t.Errorf("Deployment %s: want one replica replaced with Recreate (an agent's name is its identity)", d.Name)
	}
	pod := d.Spec.Template
	if sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector); err != nil || !sel.Matches(labels.Set(pod.Labels)) {
		t.Errorf("Deployment %s: selector does not select its pods (%v)", d.Name, err)
	}
	checkPodSecurity(t, "Deployment "+d.Name, &pod.Spec)
	if len(pod.Spec.Containers) != 1 {
		t.Fatalf("Deployment %s: want one container", d.Name)
	}
	c := pod.Spec.Containers[0]
	ports := containerPorts(t, c)
	checkProbes(t, d.Name, c, ports["http"])
	if !strings.Contains(c.Image, "meshfed-agent:") {
		t.Errorf("Deployment %s: image %q, want the agent image (with python3)", d.Name, c.Image)
	}
	args, err := podArgs(c.Args, map[string]string{})
	if err != nil {
		t.Fatal(err)
	}
	cmd, err := parseCommandLine(args)
	if err != nil {
		t.Fatalf("Deployment %s: the rendered command line does not parse: %v\n%q", d.Name, err, args)
	}
	if cmd.Name() != "agent" {
		t.Fatalf("Deployment %s runs meshfed %s, want agent", d.Name, cmd.Name())
	}
	flag := flagValue(t, cmd)
	if flag("cluster") != want["cluster"] {
		t.Errorf("Deployment %s: --cluster %q, want %v", d.Name, flag("cluster"), want["cluster"])
	}
	if n, ok := want["name"].(string); ok && flag("name") != n {
		t.Errorf("Deployment %s: --name %q, want %q", d.Name, flag("name"), n)
	}
	for _, f := range []string{"pulsarURL", "pulsarAdminURL"} {
		flagName := map[string]string{"pulsarURL": "pulsar-url", "pulsarAdminURL": "pulsar-admin-url"}[f]
		if w, _ := want[f].(string); flag(flagName) != w {
			t.Errorf("Deployment %s: --%s %q, want %q", d.Name, flagName, flag(flagName), w)
		}
	}
	if c, ok := want["capacity"].(float64); ok && flag("capacity") != strconv.Itoa(int(c)) {
		t.Errorf("Deployment %s: --capacity %s, want %v", d.Name, flag("capacity"), c)
	}
	if bindPort(t, flag("http-addr")) != ports["http"] {
		t.Errorf("Deployment %s: --http-addr %q is not the probed port", d.Name, flag("http-addr"))
	}
	checkMounted(t, d.Name, &pod.Spec, c, []string{flag("data-dir")}, "data")
	// --server names the client Service and its gRPC port.
	host, port, err := net.SplitHostPort(global.server)
	if err != nil {
		t.Fatalf("Deployment %s: --server %q: %v", d.Name, global.server, err)
	}
	svcName, _, _ := strings.Cut(host, ".")
	svc := v.services[svcName]
	if svc == nil || host != svcName+"."+chartNamespace+".svc.cluster.local" {
		t.Fatalf("Deployment %s: --server %q is not a rendered Service's name", d.Name, global.server)
	}
	if !slices.ContainsFunc(svc.Spec.Ports, func(p corev1.ServicePort) bool { return strconv.Itoa(int(p.Port)) == port && p.Name == "grpc" }) {
		t.Errorf("Deployment %s: --server port %s is not Service %s's grpc port", d.Name, port, svc.Name)
	}
	if v.tlsEnabled() {
		secret := checkMounted(t, d.Name, &pod.Spec, c, []string{global.tls.Cert, global.tls.Key, global.tls.CA}, "tls")
		if v.certManager() {
			cert := v.certs[secret]
			if cert == nil {
				t.Fatalf("Deployment %s: no Certificate writes Secret %s", d.Name, secret)
			}
			id := certIdentity(t, cert)
			if id.Role != security.RoleAgent || id.Cluster != flag("cluster") || id.Name != flag("name") {
				t.Errorf("Deployment %s: certificate identity %+v, want agent %s of cluster %s", d.Name, id, flag("name"), flag("cluster"))
			}
		}
	} else if global.tls.Cert != "" {
		t.Errorf("Deployment %s: --tls-cert set with tls.enabled false", d.Name)
	}
	// The credentials Secret: each key given is a file under
	// /etc/meshfed/pulsar that NOTES.txt tells the Cluster object to name.
	cred, _ := want["credentials"].(map[string]any)
	for key, file := range pulsarFiles {
		secretKey, _ := cred[key].(string)
		p := "/etc/meshfed/pulsar/" + file
		if secretKey == "" {
			continue
		}
		secret := checkMounted(t, d.Name, &pod.Spec, c, []string{p}, "pulsar")
		if secret != cred["secretName"] {
			t.Errorf("Deployment %s: %s comes from Secret %q, want %v", d.Name, p, secret, cred["secretName"])
		}
		if !strings.Contains(v.rc.notes, p) {
			t.Errorf("NOTES.txt does not tell agent %s's Cluster to name %s", d.Name, p)
		}
	}
}

// checkMounted checks that each file is in a volume mounted read-only (or,
// for a directory, mounted) in the container from the named volume, and
// that a Secret (or projected Secret) item puts it there. It returns the
// Secret's name ("" for other volumes).
func checkMounted(t *testing.T, who string, spec *corev1.PodSpec, c corev1.Container, files []string, volume string) string {
	t.Helper()
	var secret string
	for _, f := range files {
		var m *corev1.VolumeMount
		for i := range c.VolumeMounts {
			vm := &c.VolumeMounts[i]
			if f == vm.MountPath || strings.HasPrefix(f, vm.MountPath+"/") {
				m = vm
			}
		}
		if m == nil || m.Name != volume {
			t.Errorf("%s: %s is not in volume %s's mount", who, f, volume)
			continue
		}
		if f == m.MountPath {
			continue
		}
		if !m.ReadOnly {
			t.Errorf("%s: volume %s (holding %s) is mounted writable", who, volume, f)
		}
		rel := strings.TrimPrefix(f, m.MountPath+"/")
		idx := slices.IndexFunc(spec.Volumes, func(vol corev1.Volume) bool { return vol.Name == volume })
		if idx < 0 {
			t.Errorf("%s: no volume %s", who, volume)
			continue
		}
		var sources []*corev1.SecretProjection
		vol := spec.Volumes[idx]
		switch {
		case vol.Secret != nil:
			sources = append(sources, &corev1.SecretProjection{LocalObjectReference: corev1.LocalObjectReference{Name: vol.Secret.SecretName}, Items: vol.Secret.Items})
		case vol.Projected != nil:
			for _, s := range vol.Projected.Sources {
				if s.Secret != nil {
					sources = append(sources, s.Secret)
				}
			}
		}
		found := ""
		for _, s := range sources {
			for _, it := range s.Items {
				if it.Path == rel {
					found = s.Name
				}
			}
		}
		if found == "" {
			t.Errorf("%s: no Secret item puts %s in volume %s", who, f, volume)
		}
		if path.Base(f) != "ca.crt" || secret == "" {
			secret = found
		}
	}
	return secret
}

func checkPodSecurity(t *testing.T, who string, spec *corev1.PodSpec) {
	t.Helper()
	ps := spec.SecurityContext
	if ps == nil || ps.RunAsNonRoot == nil || !*ps.RunAsNonRoot || ps.RunAsUser == nil || *ps.RunAsUser == 0 ||
		ps.SeccompProfile == nil || ps.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("%s: pod securityContext %+v: want non-root with the RuntimeDefault seccomp profile", who, ps)
	}
	if spec.AutomountServiceAccountToken == nil || *spec.AutomountServiceAccountToken {
		t.Errorf("%s: the pod mounts a service account token", who)
	}
	for _, c := range spec.Containers {
		s := c.SecurityContext
		if s == nil || s.ReadOnlyRootFilesystem == nil || !*s.ReadOnlyRootFilesystem ||
			s.AllowPrivilegeEscalation == nil || *s.AllowPrivilegeEscalation ||
			s.Capabilities == nil || !slices.Contains(s.Capabilities.Drop, "ALL") {
			t.Errorf("%s: container %s securityContext %+v: want a read-only root fs, no privilege escalation, all capabilities dropped", who, c.Name, s)
		}
		if !slices.ContainsFunc(c.VolumeMounts, func(m corev1.VolumeMount) bool { return m.MountPath == "/tmp" }) {
			t.Errorf("%s: container %s has no writable /tmp", who, c.Name)
		}
	}
}

func containerPorts(t *testing.T, c corev1.Container) map[string]int32 {
	t.Helper()
	out := map[string]int32{}
	for _, p := range c.Ports {
		out[p.Name] = p.ContainerPort
	}
	if out["http"] == 0 {
		t.Errorf("container %s has no port named http", c.Name)
	}
	return out
}

func checkProbes(t *testing.T, who string, c corev1.Container, httpPort int32) {
	t.Helper()
	for name, want := range map[string]struct {
		p    *corev1.Probe
		path string
	}{"liveness": {c.LivenessProbe, "/healthz"}, "readiness": {c.ReadinessProbe, "/readyz"}} {
		p := want.p
		if p == nil || p.HTTPGet == nil || p.HTTPGet.Path != want.path {
			t.Errorf("%s: %s probe %+v, want GET %s", who, name, p, want.path)
			continue
		}
		port := p.HTTPGet.Port
		if port.String() != "http" && port.IntValue() != int(httpPort) {
			t.Errorf("%s: %s probe port %s is not the http port", who, name, port.String())
		}
	}
}

func checkSelects(t *testing.T, who string, selector, podLabels map[string]string) {
	t.Helper()
	if len(selector) == 0 || !labels.SelectorFromSet(selector).Matches(labels.Set(podLabels)) {
		t.Errorf("%s: selector %v does not select the pods %v", who, selector, podLabels)
	}
}

func checkServicePorts(t *testing.T, s *corev1.Service, ports map[string]int32) {
	t.Helper()
	for _, p := range s.Spec.Ports {
		if _, ok := ports[p.TargetPort.String()]; !ok {
			t.Errorf("Service %s: port %s targets %q, not a container port", s.Name, p.Name, p.TargetPort.String())
		}
	}
}

// flagValue returns a lookup of cmd's flag values that fails the test for a
// flag meshfed no longer has.
func flagValue(t *testing.T, cmd *cobra.Command) func(string) string {
	return func(name string) string {
		t.Helper()
		f := cmd.Flags().Lookup(name)
		if f == nil {
			t.Fatalf("meshfed %s has no flag --%s (renamed? update the chart)", cmd.Name(), name)
		}
		return f.Value.String()
	}
}

func bindPort(t *testing.T, addr string) int32 {
	t.Helper()
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Errorf("address %q: %v", addr, err)
		return -1
	}
	n, _ := strconv.Atoi(p)
	return int32(n)
}

// certIdentity reads a Certificate's meshfed identity as the servers read
// the issued certificate's.
func certIdentity(t *testing.T, c *certificate) security.Identity {
	t.Helper()
	x := &x509.Certificate{}
	for _, u := range c.Spec.URIs {
		p, err := url.Parse(u)
		if err != nil {
			t.Fatalf("Certificate %s: uri %q: %v", c.Name, u, err)
		}
		x.URIs = append(x.URIs, p)
	}
	id, err := security.IdentityOf(x)
	if err != nil {
		t.Fatalf("Certificate %s: %v", c.Name, err)
	}
	return id
}

// checkCertificateSpec checks what cert-manager would refuse or what
// meshfed's TLS needs: usages from cert-manager's list, client auth for
// everyone, an ECDSA key, an issuer.
func checkCertificateSpec(t *testing.T, c *certificate) {
	t.Helper()
	known := []string{"digital signature", "key encipherment", "server auth", "client auth"}
	for _, u := range c.Spec.Usages {
		if !slices.Contains(known, u) {
			t.Errorf("Certificate %s: usage %q", c.Name, u)
		}
	}
	if !slices.Contains(c.Spec.Usages, "client auth") {
		t.Errorf("Certificate %s: every meshfed certificate is a TLS client (mutual TLS)", c.Name)
	}
	if c.Spec.PrivateKey.Algorithm != "ECDSA" || c.Spec.IssuerRef.Name == "" || c.Spec.SecretName == "" {
		t.Errorf("Certificate %s: %+v", c.Name, c.Spec)
	}
	for _, ip := range c.Spec.IPAddresses {
		if net.ParseIP(ip) == nil {
			t.Errorf("Certificate %s: ipAddress %q", c.Name, ip)
		}
	}
}

// checkMonitors: the ServiceMonitor (when enabled) selects the client
// Service of the servers and the agents' metrics Service, by a port named
// http.
func checkMonitors(t *testing.T, v *chartView) {
	t.Helper()
	enabled, _ := v.value("serviceMonitor", "enabled").(bool)
	if !enabled {
		if len(v.monitors) != 0 {
			t.Error("a ServiceMonitor rendered with serviceMonitor.enabled false")
		}
		return
	}
	if len(v.monitors) != 1 {
		t.Fatalf("want one ServiceMonitor, got %d", len(v.monitors))
	}
	m := v.monitors[0]
	sel, err := metav1.LabelSelectorAsSelector(&m.Spec.Selector)
	if err != nil {
		t.Fatal(err)
	}
	var selected []string
	for _, s := range v.services {
		if sel.Matches(labels.Set(s.Labels)) {
			selected = append(selected, s.Labels["app.kubernetes.io/component"])
			if !slices.ContainsFunc(s.Spec.Ports, func(p corev1.ServicePort) bool { return p.Name == m.Spec.Endpoints[0].Port }) {
				t.Errorf("Service %s has no port %q", s.Name, m.Spec.Endpoints[0].Port)
			}
		}
	}
	slices.Sort(selected)
	want := []string{"server"}
	if len(v.agents()) > 0 {
		want = []string{"agent", "server"}
	}
	if !slices.Equal(selected, want) {
		t.Errorf("ServiceMonitor selects Services of %v, want %v (one each)", selected, want)
	}
}
