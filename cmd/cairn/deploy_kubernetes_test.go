package main

// Tests of deploy/kubernetes: see deploy_test.go.

import (
	"bytes"
	"cmp"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	cairnserver "github.com/cairnkv/cairn/cmd/cairn/server"
)

// The types below model the fields the manifests use, decoded strictly: a
// misspelt or misplaced field fails the test. Kubernetes itself (its OpenAPI
// schema) is not at hand without a cluster.

type k8sMeta struct {
	Name   string            `yaml:"name"`
	Labels map[string]string `yaml:"labels"`
}

type k8sSelector struct {
	MatchLabels map[string]string `yaml:"matchLabels"`
}

type k8sService struct {
	Type                     string            `yaml:"type"`
	ClusterIP                string            `yaml:"clusterIP"`
	PublishNotReadyAddresses bool              `yaml:"publishNotReadyAddresses"`
	Selector                 map[string]string `yaml:"selector"`
	Ports                    []struct {
		Name       string `yaml:"name"`
		Port       int    `yaml:"port"`
		TargetPort string `yaml:"targetPort"`
		Protocol   string `yaml:"protocol"`
	} `yaml:"ports"`
}

type k8sPDB struct {
	MaxUnavailable *int        `yaml:"maxUnavailable"`
	MinAvailable   *int        `yaml:"minAvailable"`
	Selector       k8sSelector `yaml:"selector"`
}

type k8sProbe struct {
	Exec *struct {
		Command []string `yaml:"command"`
	} `yaml:"exec"`
	TCPSocket *struct {
		Port string `yaml:"port"`
	} `yaml:"tcpSocket"`
	HTTPGet *struct {
		Path   string `yaml:"path"`
		Port   string `yaml:"port"`
		Scheme string `yaml:"scheme"`
	} `yaml:"httpGet"`
	InitialDelaySeconds int `yaml:"initialDelaySeconds"`
	PeriodSeconds       int `yaml:"periodSeconds"`
	TimeoutSeconds      int `yaml:"timeoutSeconds"`
	FailureThreshold    int `yaml:"failureThreshold"`
}

type k8sContainer struct {
	Name            string   `yaml:"name"`
	Image           string   `yaml:"image"`
	ImagePullPolicy string   `yaml:"imagePullPolicy"`
	Command         []string `yaml:"command"`
	Args            []string `yaml:"args"`
	Env             []struct {
		Name      string `yaml:"name"`
		Value     string `yaml:"value"`
		ValueFrom struct {
			FieldRef struct {
				FieldPath string `yaml:"fieldPath"`
			} `yaml:"fieldRef"`
		} `yaml:"valueFrom"`
	} `yaml:"env"`
	Ports []struct {
		Name          string `yaml:"name"`
		ContainerPort int    `yaml:"containerPort"`
		Protocol      string `yaml:"protocol"`
	} `yaml:"ports"`
	StartupProbe   *k8sProbe `yaml:"startupProbe"`
	LivenessProbe  *k8sProbe `yaml:"livenessProbe"`
	ReadinessProbe *k8sProbe `yaml:"readinessProbe"`
	Resources      struct {
		Requests map[string]string `yaml:"requests"`
		Limits   map[string]string `yaml:"limits"`
	} `yaml:"resources"`
	SecurityContext struct {
		AllowPrivilegeEscalation *bool `yaml:"allowPrivilegeEscalation"`
		ReadOnlyRootFilesystem   *bool `yaml:"readOnlyRootFilesystem"`
		Capabilities             struct {
			Drop []string `yaml:"drop"`
		} `yaml:"capabilities"`
	} `yaml:"securityContext"`
	VolumeMounts []struct {
		Name      string `yaml:"name"`
		MountPath string `yaml:"mountPath"`
		ReadOnly  bool   `yaml:"readOnly"`
	} `yaml:"volumeMounts"`
}

// volumeAt returns the volume mounted at the directory holding path.
func (c k8sContainer) volumeAt(path string) (name string, readOnly bool) {
	for _, m := range c.VolumeMounts {
		if filepath.Dir(path) == m.MountPath || path == m.MountPath {
			return m.Name, m.ReadOnly
		}
	}
	return "", false
}

type k8sStatefulSet struct {
	ServiceName         string `yaml:"serviceName"`
	Replicas            int    `yaml:"replicas"`
	PodManagementPolicy string `yaml:"podManagementPolicy"`
	UpdateStrategy      struct {
		Type string `yaml:"type"`
	} `yaml:"updateStrategy"`
	Selector k8sSelector `yaml:"selector"`
	Template struct {
		Metadata k8sMeta `yaml:"metadata"`
		Spec     struct {
			EnableServiceLinks            *bool `yaml:"enableServiceLinks"`
			AutomountServiceAccountToken  *bool `yaml:"automountServiceAccountToken"`
			TerminationGracePeriodSeconds int   `yaml:"terminationGracePeriodSeconds"`
			SecurityContext               struct {
				RunAsNonRoot        *bool  `yaml:"runAsNonRoot"`
				RunAsUser           *int   `yaml:"runAsUser"`
				RunAsGroup          *int   `yaml:"runAsGroup"`
				FSGroup             *int   `yaml:"fsGroup"`
				FSGroupChangePolicy string `yaml:"fsGroupChangePolicy"`
				SeccompProfile      struct {
					Type string `yaml:"type"`
				} `yaml:"seccompProfile"`
			} `yaml:"securityContext"`
			Affinity       map[string]any `yaml:"affinity"`
			InitContainers []k8sContainer `yaml:"initContainers"`
			Containers     []k8sContainer `yaml:"containers"`
			Volumes        []struct {
				Name     string `yaml:"name"`
				EmptyDir *struct {
					Medium    string `yaml:"medium"`
					SizeLimit string `yaml:"sizeLimit"`
				} `yaml:"emptyDir"`
				Secret *struct {
					SecretName  string `yaml:"secretName"`
					DefaultMode *int   `yaml:"defaultMode"`
				} `yaml:"secret"`
			} `yaml:"volumes"`
		} `yaml:"spec"`
	} `yaml:"template"`
	VolumeClaimTemplates []struct {
		Metadata k8sMeta `yaml:"metadata"`
		Spec     struct {
			AccessModes []string `yaml:"accessModes"`
			Resources   struct {
				Requests map[string]string `yaml:"requests"`
			} `yaml:"resources"`
		} `yaml:"spec"`
	} `yaml:"volumeClaimTemplates"`
}

type k8sManifests struct {
	services map[string]k8sService
	sts      k8sStatefulSet
	stsName  string
	pdb      k8sPDB
}

func loadK8s(t *testing.T) k8sManifests {
	t.Helper()
	var kust struct {
		APIVersion string           `yaml:"apiVersion"`
		Kind       string           `yaml:"kind"`
		Labels     []map[string]any `yaml:"labels"`
		Resources  []string         `yaml:"resources"`
	}
	depStrict(t, "kustomization.yaml", depRead(t, "deploy/kubernetes/kustomization.yaml"), &kust)
	files, _ := filepath.Glob(filepath.Join(deployRoot, "deploy/kubernetes/*.yaml"))
	var onDisk []string
	for _, f := range files {
		if filepath.Base(f) != "kustomization.yaml" {
			onDisk = append(onDisk, filepath.Base(f))
		}
	}
	if !depSameSet(onDisk, kust.Resources) {
		t.Errorf("kustomization resources %v, files %v", kust.Resources, onDisk)
	}
	m := k8sManifests{services: map[string]k8sService{}}
	kinds := map[string]int{}
	for _, f := range kust.Resources {
		d := yaml.NewDecoder(bytes.NewReader(depRead(t, "deploy/kubernetes/"+f)))
		for {
			var obj struct {
				APIVersion string    `yaml:"apiVersion"`
				Kind       string    `yaml:"kind"`
				Metadata   k8sMeta   `yaml:"metadata"`
				Spec       yaml.Node `yaml:"spec"`
			}
			if err := d.Decode(&obj); err == io.EOF {
				break
			} else if err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			spec, err := yaml.Marshal(&obj.Spec)
			if err != nil {
				t.Fatal(err)
			}
			where := f + ": " + obj.Kind + " " + obj.Metadata.Name
			kinds[obj.APIVersion+" "+obj.Kind]++
			switch obj.APIVersion + " " + obj.Kind {
			case "v1 Service":
				var s k8sService
				depStrict(t, where, spec, &s)
				m.services[obj.Metadata.Name] = s
			case "apps/v1 StatefulSet":
				depStrict(t, where, spec, &m.sts)
				m.stsName = obj.Metadata.Name
			case "policy/v1 PodDisruptionBudget":
				depStrict(t, where, spec, &m.pdb)
			default:
				t.Errorf("%s: unexpected %s %s", f, obj.APIVersion, obj.Kind)
			}
		}
	}
	want := map[string]int{"v1 Service": 2, "apps/v1 StatefulSet": 1, "policy/v1 PodDisruptionBudget": 1}
	if fmt.Sprint(kinds) != fmt.Sprint(want) {
		t.Fatalf("kinds %v, want %v", kinds, want)
	}
	return m
}

func depSubset(sub, of map[string]string) bool {
	for k, v := range sub {
		if of[k] != v {
			return false
		}
	}
	return len(sub) > 0
}

func TestDeployKubernetes(t *testing.T) {
	m := loadK8s(t)
	sts := m.sts
	pod := sts.Template.Spec
	labels := sts.Template.Metadata.Labels

	if sts.Replicas != 3 || sts.PodManagementPolicy != "Parallel" || sts.UpdateStrategy.Type != "RollingUpdate" {
		t.Errorf("StatefulSet: replicas %d, podManagementPolicy %q, updateStrategy %q; want 3, Parallel, RollingUpdate",
			sts.Replicas, sts.PodManagementPolicy, sts.UpdateStrategy.Type)
	}
	if !depSubset(sts.Selector.MatchLabels, labels) || !depSubset(m.pdb.Selector.MatchLabels, labels) {
		t.Errorf("selectors %v (StatefulSet), %v (PDB) do not match the pod labels %v", sts.Selector.MatchLabels, m.pdb.Selector.MatchLabels, labels)
	}
	if m.pdb.MaxUnavailable == nil || *m.pdb.MaxUnavailable != 1 || m.pdb.MinAvailable != nil {
		t.Errorf("PodDisruptionBudget: want maxUnavailable 1 alone")
	}
	headless, ok := m.services[sts.ServiceName]
	if !ok || headless.ClusterIP != "None" || !headless.PublishNotReadyAddresses {
		t.Errorf("service %q (the StatefulSet's serviceName): want it headless, publishing not-ready pods", sts.ServiceName)
	}
	for name, s := range m.services {
		if !depSubset(s.Selector, labels) {
			t.Errorf("service %s selects %v, not the pods %v", name, s.Selector, labels)
		}
	}

	// Pod-wide settings.
	if pod.EnableServiceLinks == nil || *pod.EnableServiceLinks {
		t.Errorf("enableServiceLinks must be false: the Services' CAIRN_* variables would stop cairn serve")
	}
	sc := pod.SecurityContext
	if sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot || sc.RunAsUser == nil || *sc.RunAsUser == 0 {
		t.Errorf("pod securityContext: want runAsNonRoot and a non-zero runAsUser")
	}
	if sc.FSGroup == nil || sc.RunAsGroup == nil || *sc.FSGroup != *sc.RunAsGroup {
		t.Errorf("pod securityContext: want fsGroup = runAsGroup, through which the non-root init container reads the Secret")
	}
	volumes := map[string]int{}
	for i, v := range pod.Volumes {
		volumes[v.Name] = i
		if v.Secret != nil && (v.Secret.DefaultMode == nil || *v.Secret.DefaultMode&0o037 != 0) {
			t.Errorf("secret volume %s: defaultMode must be set, without group write or any other access", v.Name)
		}
	}
	for _, vct := range sts.VolumeClaimTemplates {
		volumes[vct.Metadata.Name] = -1
		if vct.Spec.Resources.Requests["storage"] == "" {
			t.Errorf("volumeClaimTemplate %s requests no storage", vct.Metadata.Name)
		}
	}
	var server *k8sContainer
	for _, c := range slices.Concat(pod.InitContainers, pod.Containers) {
		sc := c.SecurityContext
		if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation ||
			!slices.Equal(sc.Capabilities.Drop, []string{"ALL"}) {
			t.Errorf("container %s: want readOnlyRootFilesystem, no privilege escalation, drop ALL", c.Name)
		}
		if c.Resources.Requests["cpu"] == "" || c.Resources.Requests["memory"] == "" || c.Resources.Limits["memory"] == "" {
			t.Errorf("container %s: want cpu and memory requests and a memory limit", c.Name)
		}
		for _, e := range c.Env {
			if strings.HasPrefix(e.Name, "CAIRN_") {
				t.Errorf("container %s: %s is set in the manifest; use flags", c.Name, e.Name)
			}
		}
		for _, vm := range c.VolumeMounts {
			if _, ok := volumes[vm.Name]; !ok {
				t.Errorf("container %s mounts unknown volume %s", c.Name, vm.Name)
			}
		}
	}
	for i := range pod.Containers {
		if pod.Containers[i].Image == "cairn:dev" {
			server = &pod.Containers[i]
		}
	}
	if server == nil {
		t.Fatalf("want a container of image cairn:dev")
	}
	ports := map[string]string{} // name → port/protocol
	for _, p := range server.Ports {
		ports[p.Name] = fmt.Sprintf("%d/%s", p.ContainerPort, p.Protocol)
	}
	for name, s := range m.services {
		for _, p := range s.Ports {
			got, ok := ports[p.TargetPort]
			if !ok || !strings.HasSuffix(got, "/"+cmp.Or(p.Protocol, "TCP")) {
				t.Errorf("service %s port %s: targetPort %q is not a %s port of the server", name, p.Name, p.TargetPort, cmp.Or(p.Protocol, "TCP"))
			}
		}
	}
	var dnsPorts []string
	for _, p := range m.services["cairn-client"].Ports {
		if p.Port == 53 {
			dnsPorts = append(dnsPorts, p.Protocol)
		}
	}
	if slices.Sort(dnsPorts); !slices.Equal(dnsPorts, []string{"TCP", "UDP"}) {
		t.Errorf("service cairn-client: DNS on port 53 over %v, want TCP and UDP", dnsPorts)
	}
	// Probes: alive is "the client port accepts", started is "/metrics
	// answers" (after the replay), ready is "/health answers 200" (a leader
	// and a linearizable read), both on the plain-HTTP metrics port, which
	// needs no client certificate.
	if p := server.LivenessProbe; p == nil || p.TCPSocket == nil || p.TCPSocket.Port != "client" {
		t.Errorf("server: want a TCP liveness probe on the client port")
	}
	for _, pr := range []struct {
		p    *k8sProbe
		path string
	}{{server.StartupProbe, "/metrics"}, {server.ReadinessProbe, "/health"}} {
		if pr.p == nil || pr.p.HTTPGet == nil || pr.p.HTTPGet.Path != pr.path || pr.p.HTTPGet.Port != "metrics" || pr.p.HTTPGet.Scheme != "" {
			t.Errorf("server: want an HTTP probe of %s on the metrics port", pr.path)
		}
	}

	// The server's command line, as each pod runs it.
	env := map[string]string{}
	var peerAddrs []string
	cfgs := make([]cairnserver.Config, sts.Replicas)
	for i := range sts.Replicas {
		env["POD_NAME"] = fmt.Sprintf("%s-%d", m.stsName, i)
		env["POD_NAMESPACE"] = "default"
		args := slices.Clone(server.Args)
		for j, a := range args {
			args[j] = regexp.MustCompile(`\$\((\w+)\)`).ReplaceAllStringFunc(a, func(v string) string { return env[v[2:len(v)-1]] })
		}
		cfg := depRun(t, "StatefulSet "+env["POD_NAME"], args, nil)
		cfgs[i] = cfg
		wantHost := fmt.Sprintf("%s.%s.default.svc", env["POD_NAME"], sts.ServiceName)
		if host, _ := depHost(t, cfg.PeerAddr); cfg.Name != env["POD_NAME"] || host != wantHost {
			t.Errorf("pod %s: --name %s, --peer-addr %s; want the pod's name and DNS name %s", env["POD_NAME"], cfg.Name, cfg.PeerAddr, wantHost)
		}
		if host, _ := depHost(t, cfg.Addr); host != wantHost {
			t.Errorf("pod %s: --addr %s, want %s", env["POD_NAME"], cfg.Addr, wantHost)
		}
		peerAddrs = append(peerAddrs, cfg.PeerAddr)
	}
	cfg := cfgs[0]
	for i, c := range cfgs {
		if !depSameSet(c.Peers, peerAddrs) {
			t.Errorf("pod %d: --peers %v, want %v", i, c.Peers, peerAddrs)
		}
	}
	_, client := depHost(t, cfg.Addr)
	_, peer := depHost(t, cfg.PeerAddr)
	dnsHost, dns := depHost(t, cfg.DNSAddr)
	if dnsHost != "" || dns == "53" {
		t.Errorf("--dns-addr %s: want every interface and a port a non-root process may bind", cfg.DNSAddr)
	}
	metricsHost, metrics := depHost(t, cfg.MetricsAddr)
	if metricsHost != "" {
		t.Errorf("--metrics-addr %s: want every interface, for the kubelet", cfg.MetricsAddr)
	}
	want := map[string]string{"client": client + "/TCP", "peer": peer + "/TCP", "dns-udp": dns + "/UDP", "dns-tcp": dns + "/TCP", "metrics": metrics + "/TCP"}
	if fmt.Sprint(ports) != fmt.Sprint(want) {
		t.Errorf("server ports %v, want %v (its flags)", ports, want)
	}
	if v, ro := server.volumeAt(cfg.DataDir); v == "" || ro || volumes[v] != -1 {
		t.Errorf("data dir %s: want a writable volume from a volumeClaimTemplate", cfg.DataDir)
	}

	// The node certificate: copied by an init container from the Secret into
	// a volume, the key with mode 0600 (a Secret volume is group-readable
	// under fsGroup, which cairn refuses for a key).
	keyVol, _ := server.volumeAt(cfg.KeyFile)
	if vi, ok := volumes[keyVol]; !ok || vi < 0 || pod.Volumes[vi].EmptyDir == nil {
		t.Fatalf("--key-file %s: want it on an emptyDir volume", cfg.KeyFile)
	}
	if v, _ := server.volumeAt(cfg.CertFile); v != keyVol {
		t.Errorf("--cert-file %s is not beside the key", cfg.CertFile)
	}
	if v, _ := server.volumeAt(cfg.CAFile); v != keyVol {
		t.Errorf("--ca-file %s is not beside the key", cfg.CAFile)
	}
	secretKeys := map[string][]string{} // Secret → keys the pods read
	var copied bool
	for _, ic := range pod.InitContainers {
		script := strings.Join(ic.Command, "\n")
		for _, vm := range ic.VolumeMounts {
			vi, ok := volumes[vm.Name]
			if !ok || vi < 0 || pod.Volumes[vi].Secret == nil {
				continue
			}
			v := pod.Volumes[vi]
			re := regexp.MustCompile(regexp.QuoteMeta(vm.MountPath) + `/(\S+)`)
			for _, mm := range re.FindAllStringSubmatch(script, -1) {
				for i := range sts.Replicas {
					secretKeys[v.Secret.SecretName] = append(secretKeys[v.Secret.SecretName],
						strings.ReplaceAll(mm[1], "$(POD_NAME)", fmt.Sprintf("%s-%d", m.stsName, i)))
				}
			}
		}
		if regexp.MustCompile(`install -m 0?600 \S+ ` + regexp.QuoteMeta(cfg.KeyFile)).MatchString(script) {
			copied = true
		}
	}
	if !copied {
		t.Errorf("no init container installs %s with mode 0600", cfg.KeyFile)
	}

	checkK8sDocs(t, secretKeys, cfgs)
}

// checkK8sDocs runs the Kubernetes section of docs/deployment.md: its PKI
// commands make certificates valid for the names the pods are dialed at,
// and its kubectl lines create the Secrets with the keys the pods read.
func checkK8sDocs(t *testing.T, secretKeys map[string][]string, cfgs []cairnserver.Config) {
	t.Helper()
	sec := depDocSection(t, "## Kubernetes")
	t.Chdir(t.TempDir())
	cmds, other := depCairnLines(sec, map[string]string{})
	for _, c := range cmds {
		depRun(t, "docs/deployment.md, Kubernetes", c, nil)
		if len(c) > 1 && (c[0] == "ca" || c[0] == "cert" && c[1] == "issue") {
			depExec(t, c)
		}
	}
	for _, cfg := range cfgs {
		host, _ := depHost(t, cfg.PeerAddr)
		depCheckNodeCert(t, filepath.Join("pki", cfg.Name+".crt"), filepath.Join("pki", cfg.Name+".key"), cfg.Name,
			host, "localhost", "cairn-client.default.svc")
	}
	created := map[string][]string{}
	for _, o := range other {
		if len(o) < 7 || o[0] != "kubectl" || !slices.Equal(o[3:6], []string{"create", "secret", "generic"}) {
			continue
		}
		name := o[6]
		for _, a := range o[7:] {
			spec, ok := strings.CutPrefix(a, "--from-file=")
			if !ok {
				continue
			}
			key, path, hasKey := strings.Cut(spec, "=")
			if !hasKey {
				key, path = filepath.Base(spec), spec
			}
			if _, err := os.Stat(path); err != nil {
				t.Errorf("secret %s: %v", name, err)
			}
			created[name] = append(created[name], key)
		}
	}
	for s, keys := range secretKeys {
		for _, k := range keys {
			if !slices.Contains(created[s], k) {
				t.Errorf("the pods read key %s of Secret %s, which docs/deployment.md does not create (it creates %v)", k, s, created[s])
			}
		}
	}
}
