package main

// Tests of deploy/ and docs/deployment.md: every artifact parses, has the
// fields a working and hardened deployment needs, passes to cairn only
// commands, flags and values that the real command tree and configuration
// loader accept (run in process, without serving), and the PKI steps of
// Compose and of the Kubernetes docs give each member a certificate valid for
// the names it is dialed at. .ci/deploy-check runs the external validators.

import (
	"bytes"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"go.yaml.in/yaml/v3"

	"github.com/cairnkv/cairn/cmd/cairn/server"
)

const deployRoot = "../.."

func depRead(t *testing.T, rel string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(deployRoot, rel))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// depRun passes args (a command line without "cairn") through the real
// command tree, with the found command's RunE replaced: flags, argument
// counts and, for serve, the whole configuration (server.Load) are checked,
// nothing is served. A serve without --config reads an empty file, not this
// machine's /etc/cairn/cairn.toml.
func depRun(t *testing.T, where string, args, environ []string) server.Config {
	t.Helper()
	root := newRootCmd(io.Discard, io.Discard, environ)
	cmd, _, err := root.Find(args)
	if err != nil {
		t.Fatalf("%s: cairn %s: %v", where, strings.Join(args, " "), err)
	}
	if cmd == root && len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		t.Fatalf("%s: cairn has no command %q", where, args[0])
	}
	var cfg server.Config
	ran := false
	cmd.Run = nil
	cmd.RunE = func(c *cobra.Command, _ []string) error {
		ran = true
		if c != root && c.Name() != "serve" {
			return nil
		}
		file, _ := c.Flags().GetString("config")
		if file == "" {
			file = filepath.Join(t.TempDir(), "empty.toml")
			if err := os.WriteFile(file, nil, 0o600); err != nil {
				return err
			}
		}
		var err error
		cfg, _, err = server.Load(c.Flags(), file, environ)
		return err
	}
	root.SetArgs(args)
	if err := root.Execute(); err != nil {
		t.Fatalf("%s: cairn %s: %v", where, strings.Join(args, " "), err)
	}
	if !ran {
		t.Fatalf("%s: cairn %s did not reach the command", where, strings.Join(args, " "))
	}
	return cfg
}

// depExec runs a cairn command for real (ca init, cert issue).
func depExec(t *testing.T, args []string) {
	t.Helper()
	var out bytes.Buffer
	root := newRootCmd(&out, &out, nil)
	root.SetArgs(args)
	if err := root.Execute(); err != nil {
		t.Fatalf("cairn %s: %v\n%s", strings.Join(args, " "), err, out.String())
	}
}

// depCairnLines returns the cairn command lines of a POSIX shell snippet:
// lines joined at a trailing backslash, NAME=value assignments and
// `for V in a b c; do ... done` loops expanded, `[ ... ] ||` guards
// dropped. A line is a cairn command when its first word is cairn or
// ./cairn; other lines are returned too, as other, expanded.
func depCairnLines(script string, vars map[string]string) (cairn, other [][]string) {
	script = strings.ReplaceAll(script, "\\\n", " ")
	forRE := regexp.MustCompile(`^for (\w+) in ([^;]+); do$`)
	assignRE := regexp.MustCompile(`^(\w+)=(\S+)$`)
	var loopVar string
	var loopVals []string
	emit := func(line string, v map[string]string) {
		line = os.Expand(line, func(k string) string {
			if val, ok := v[k]; ok {
				return val
			}
			return "$" + k
		})
		if i := strings.Index(line, "|| "); i >= 0 && strings.HasPrefix(line, "[") {
			line = line[i+3:]
		}
		w := depWords(line)
		if len(w) > 0 && (w[0] == "cairn" || w[0] == "./cairn") {
			cairn = append(cairn, w[1:])
		} else if len(w) > 0 {
			other = append(other, w)
		}
	}
	for _, line := range strings.Split(script, "\n") {
		line = strings.TrimSpace(line)
		if i := strings.Index(line, " #"); i >= 0 {
			line = strings.TrimSpace(line[:i])
		}
		switch m := forRE.FindStringSubmatch(line); {
		case m != nil:
			loopVar, loopVals = m[1], strings.Fields(m[2])
		case line == "done":
			loopVar, loopVals = "", nil
		case assignRE.MatchString(line):
			m := assignRE.FindStringSubmatch(line)
			vars[m[1]] = m[2]
		case loopVar != "":
			for _, val := range loopVals {
				v := map[string]string{loopVar: val}
				for k, x := range vars {
					v[k] = x
				}
				emit(line, v)
			}
		default:
			emit(line, vars)
		}
	}
	return cairn, other
}

// depWords splits a shell line into words, honouring single and double
// quotes (no escapes: the snippets here have none).
func depWords(line string) []string {
	var words []string
	var cur strings.Builder
	var quote rune
	in := false
	for _, r := range line {
		switch {
		case quote != 0 && r == quote:
			quote = 0
		case quote != 0:
			cur.WriteRune(r)
		case r == '\'' || r == '"':
			quote, in = r, true
		case r == ' ' || r == '\t':
			if in {
				words = append(words, cur.String())
				cur.Reset()
				in = false
			}
		default:
			cur.WriteRune(r)
			in = true
		}
	}
	if in {
		words = append(words, cur.String())
	}
	return words
}

// depCert reads the leaf of a PEM certificate file.
func depCert(t *testing.T, path string) *x509.Certificate {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		t.Fatalf("%s: no PEM block", path)
	}
	c, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return c
}

// depCheckNodeCert checks a member's certificate: node identity name, valid
// for every host it is dialed at, key mode 0600.
func depCheckNodeCert(t *testing.T, certFile, keyFile, name string, hosts ...string) {
	t.Helper()
	c := depCert(t, certFile)
	want := "spiffe://cairn.internal/node/" + name
	if len(c.URIs) != 1 || c.URIs[0].String() != want {
		t.Errorf("%s: identity %v, want %s", certFile, c.URIs, want)
	}
	for _, h := range hosts {
		if err := c.VerifyHostname(h); err != nil {
			t.Errorf("%s: not valid for %s, which member %s is dialed at: %v", certFile, h, name, err)
		}
	}
	fi, err := os.Stat(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("%s: mode %o, want 0600", keyFile, fi.Mode().Perm())
	}
}

func depSameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(slices.Compact(a), slices.Compact(b))
}

func depHost(t *testing.T, hostport string) (host, port string) {
	t.Helper()
	host, port, err := net.SplitHostPort(hostport)
	if err != nil {
		t.Fatal(err)
	}
	return host, port
}

// ---- systemd ----

type unitFile map[string]map[string][]string // section → key → values

func parseUnit(t *testing.T, b []byte) unitFile {
	t.Helper()
	u := unitFile{}
	var sec string
	for i, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		switch {
		case line == "" || line[0] == '#' || line[0] == ';':
		case line[0] == '[' && line[len(line)-1] == ']':
			sec = line[1 : len(line)-1]
			u[sec] = map[string][]string{}
		case strings.Contains(line, "=") && sec != "":
			k, v, _ := strings.Cut(line, "=")
			u[sec][k] = append(u[sec][k], v)
		default:
			t.Fatalf("unit line %d: %q", i+1, line)
		}
	}
	return u
}

func (u unitFile) get(sec, key string) string {
	v := u[sec][key]
	if len(v) == 0 {
		return ""
	}
	return v[len(v)-1]
}

func TestDeploySystemdUnit(t *testing.T) {
	u := parseUnit(t, depRead(t, "deploy/systemd/cairn.service"))
	for _, kv := range [][2]string{
		{"User", "cairn"}, {"Group", "cairn"}, {"ProtectSystem", "strict"},
		{"StateDirectory", "cairn"}, {"NoNewPrivileges", "yes"},
		{"AmbientCapabilities", "CAP_NET_BIND_SERVICE"}, {"CapabilityBoundingSet", "CAP_NET_BIND_SERVICE"},
		{"PrivateTmp", "yes"}, {"ProtectHome", "yes"}, {"Restart", "on-failure"},
		{"ExecReload", "/bin/kill -HUP $MAINPID"},
	} {
		if got := u.get("Service", kv[0]); got != kv[1] {
			t.Errorf("[Service] %s=%q, want %q", kv[0], got, kv[1])
		}
	}
	if d := u.get("Service", "DynamicUser"); d != "" && d != "no" {
		t.Errorf("DynamicUser=%s: the key file must be owned by a stable user", d)
	}
	if n, err := strconv.Atoi(u.get("Service", "LimitNOFILE")); err != nil || n < 4096 {
		t.Errorf("LimitNOFILE=%q, want a number of at least 4096", u.get("Service", "LimitNOFILE"))
	}
	if !slices.Contains(u["Service"]["SystemCallFilter"], "@system-service") {
		t.Errorf("SystemCallFilter %q lacks @system-service", u["Service"]["SystemCallFilter"])
	}
	if f := strings.Fields(u.get("Service", "RestrictAddressFamilies")); !slices.Contains(f, "AF_INET") || !slices.Contains(f, "AF_INET6") {
		t.Errorf("RestrictAddressFamilies=%v", f)
	}
	if u.get("Install", "WantedBy") != "multi-user.target" {
		t.Errorf("[Install] WantedBy=%q", u.get("Install", "WantedBy"))
	}
	sysusers := string(depRead(t, "deploy/systemd/cairn.sysusers"))
	if !regexp.MustCompile(`(?m)^u cairn `).MatchString(sysusers) {
		t.Errorf("cairn.sysusers does not create the user cairn")
	}

	exec := strings.Fields(u.get("Service", "ExecStart"))
	if len(exec) < 2 || exec[0] != "/usr/local/bin/cairn" {
		t.Fatalf("ExecStart=%v", exec)
	}
	args := slices.Clone(exec[1:])
	i := slices.Index(args, "--config")
	if i < 0 || i+1 == len(args) || args[i+1] != "/etc/cairn/cairn.toml" {
		t.Fatalf("ExecStart %v: want --config /etc/cairn/cairn.toml", exec)
	}
	args[i+1] = filepath.Join(deployRoot, "deploy/systemd/cairn.toml")
	cfg := depRun(t, "ExecStart with deploy/systemd/cairn.toml", args, nil)

	if want := "/var/lib/" + u.get("Service", "StateDirectory"); cfg.DataDir != want {
		t.Errorf("cairn.toml data_dir = %q, want the unit's StateDirectory %s", cfg.DataDir, want)
	}
	if _, port := depHost(t, cfg.DNSAddr); port != "53" {
		t.Errorf("cairn.toml [dns] addr = %q, want port 53", cfg.DNSAddr)
	}
	if len(cfg.Peers) != 3 || !slices.Contains(cfg.Peers, cfg.PeerAddr) {
		t.Errorf("cairn.toml peers = %v, want all 3 members, %s among them", cfg.Peers, cfg.PeerAddr)
	}
	for _, f := range []string{cfg.CAFile, cfg.CertFile, cfg.KeyFile} {
		if !strings.HasPrefix(f, "/etc/cairn/") {
			t.Errorf("cairn.toml: certificate file %q outside /etc/cairn", f)
		}
	}
}

// ---- Dockerfile ----

type dockerStage struct {
	from, name string
	instr      [][2]string // keyword, rest
}

func parseDockerfile(t *testing.T, b []byte) (args map[string]string, stages []*dockerStage) {
	t.Helper()
	args = map[string]string{}
	text := strings.ReplaceAll(string(b), "\\\n", " ")
	for _, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' {
			continue
		}
		kw, rest, _ := strings.Cut(line, " ")
		kw, rest = strings.ToUpper(kw), strings.TrimSpace(rest)
		switch {
		case kw == "FROM":
			f := strings.Fields(rest)
			s := &dockerStage{from: f[0]}
			if len(f) == 3 && strings.EqualFold(f[1], "AS") {
				s.name = f[2]
			}
			stages = append(stages, s)
		case kw == "ARG" && len(stages) == 0:
			k, v, _ := strings.Cut(rest, "=")
			args[k] = v
		case len(stages) == 0:
			t.Fatalf("Dockerfile: %s before FROM", kw)
		default:
			s := stages[len(stages)-1]
			s.instr = append(s.instr, [2]string{kw, rest})
		}
	}
	return args, stages
}

func (s *dockerStage) all(kw string) []string {
	var out []string
	for _, in := range s.instr {
		if in[0] == kw {
			out = append(out, in[1])
		}
	}
	return out
}

func (s *dockerStage) exec(t *testing.T, kw string) []string {
	t.Helper()
	v := s.all(kw)
	if len(v) != 1 {
		t.Fatalf("Dockerfile: final stage has %d %s, want 1", len(v), kw)
	}
	var out []string
	if err := json.Unmarshal([]byte(v[0]), &out); err != nil {
		t.Fatalf("Dockerfile: %s %s is not the exec (JSON) form: %v", kw, v[0], err)
	}
	return out
}

func TestDeployDockerfile(t *testing.T) {
	args, stages := parseDockerfile(t, depRead(t, "deploy/docker/Dockerfile"))
	gomod := regexp.MustCompile(`(?m)^go (\d+\.\d+)`).FindSubmatch(depRead(t, "go.mod"))
	if gomod == nil || args["GO_VERSION"] != string(gomod[1]) {
		t.Errorf("Dockerfile ARG GO_VERSION=%q, go.mod says go %s", args["GO_VERSION"], gomod[1])
	}
	build, final := stages[0], stages[len(stages)-1]
	if build.from != "golang:${GO_VERSION}" || build.name != "build" {
		t.Errorf("first stage FROM %s AS %s, want golang:${GO_VERSION} AS build", build.from, build.name)
	}
	if runs := strings.Join(build.all("RUN"), "\n"); !strings.Contains(runs, "CGO_ENABLED=0 go build") {
		t.Errorf("the build stage does not build with CGO_ENABLED=0")
	}
	if !strings.HasPrefix(final.from, "gcr.io/distroless/static") && final.from != "scratch" {
		t.Errorf("final stage FROM %s, want distroless/static or scratch", final.from)
	}
	if u := final.all("USER"); len(u) == 0 || strings.HasPrefix(u[len(u)-1], "0") || strings.HasPrefix(u[len(u)-1], "root") {
		t.Errorf("final stage USER %v, want a non-root user", u)
	}
	if !slices.ContainsFunc(stages, func(s *dockerStage) bool { return s.name == "tools" }) {
		t.Errorf("no stage named tools (used by deploy/compose and deploy/kubernetes)")
	}

	entry := final.exec(t, "ENTRYPOINT")
	if !slices.ContainsFunc(final.all("COPY"), func(c string) bool {
		f := strings.Fields(c)
		return slices.Contains(f, "--from=build") && f[len(f)-1] == entry[0]
	}) {
		t.Errorf("ENTRYPOINT %v: no COPY --from=build puts the binary there", entry)
	}
	cmd := final.exec(t, "CMD")
	cfg := depRun(t, "Dockerfile CMD", cmd, nil)
	if cfg.DataDir != "/var/lib/cairn" {
		t.Errorf("CMD data dir %q, want /var/lib/cairn", cfg.DataDir)
	}
	for _, a := range []string{cfg.BindAddr, cfg.PeerBindAddr, cfg.DNSAddr} {
		if h, _ := depHost(t, a); h != "" && h != "0.0.0.0" && h != "::" {
			t.Errorf("CMD listens on %s, want every interface", a)
		}
	}
	_, client := depHost(t, cfg.BindAddr)
	_, peer := depHost(t, cfg.PeerBindAddr)
	_, dns := depHost(t, cfg.DNSAddr)
	want := []string{client + "/tcp", peer + "/tcp", dns + "/udp", dns + "/tcp"}
	var exposed []string
	for _, e := range final.all("EXPOSE") {
		exposed = append(exposed, strings.Fields(e)...)
	}
	slices.Sort(want)
	slices.Sort(exposed)
	if !slices.Equal(exposed, want) {
		t.Errorf("EXPOSE %v, want %v (the ports of CMD)", exposed, want)
	}
	if dns == "53" {
		t.Errorf("DNS on 53 in a non-root image cannot bind; listen on 8053 and publish 53")
	}
}

// ---- Compose ----

type composeService struct {
	Image string `yaml:"image"`
	Build struct {
		Context    string `yaml:"context"`
		Dockerfile string `yaml:"dockerfile"`
		Target     string `yaml:"target"`
	} `yaml:"build"`
	DependsOn map[string]struct {
		Condition string `yaml:"condition"`
	} `yaml:"depends_on"`
	Restart     string   `yaml:"restart"`
	User        string   `yaml:"user"`
	ReadOnly    bool     `yaml:"read_only"`
	CapDrop     []string `yaml:"cap_drop"`
	SecurityOpt []string `yaml:"security_opt"`
	Tmpfs       []string `yaml:"tmpfs"`
	Hostname    string   `yaml:"hostname"`
	Entrypoint  []string `yaml:"entrypoint"`
	Command     []string `yaml:"command"`
	Ports       []string `yaml:"ports"`
	Volumes     []string `yaml:"volumes"`
}

type composeFile struct {
	Member   composeService            `yaml:"x-member"`
	Services map[string]composeService `yaml:"services"`
	Volumes  map[string]any            `yaml:"volumes"`
}

func depStrict(t *testing.T, where string, b []byte, v any) {
	t.Helper()
	d := yaml.NewDecoder(bytes.NewReader(b))
	d.KnownFields(true)
	if err := d.Decode(v); err != nil {
		t.Fatalf("%s: %v", where, err)
	}
}

func checkHardened(t *testing.T, name string, s composeService) {
	t.Helper()
	if s.User == "" || strings.HasPrefix(s.User, "0") || strings.HasPrefix(s.User, "root") {
		t.Errorf("service %s: user %q, want non-root", name, s.User)
	}
	if !s.ReadOnly || !slices.Equal(s.CapDrop, []string{"ALL"}) || !slices.Contains(s.SecurityOpt, "no-new-privileges:true") {
		t.Errorf("service %s: read_only %v, cap_drop %v, security_opt %v", name, s.ReadOnly, s.CapDrop, s.SecurityOpt)
	}
}

func TestDeployCompose(t *testing.T) {
	var cf composeFile
	depStrict(t, "compose.yaml", depRead(t, "deploy/compose/compose.yaml"), &cf)

	pki, ok := cf.Services["pki"]
	if !ok {
		t.Fatal("no service pki")
	}
	checkHardened(t, "pki", pki)
	if pki.Build.Target != "tools" || pki.Build.Dockerfile != "deploy/docker/Dockerfile" {
		t.Errorf("pki builds %+v, want the tools target of deploy/docker/Dockerfile", pki.Build)
	}
	mounts := func(s composeService) map[string]string { // container path → volume[:ro]
		m := map[string]string{}
		for _, v := range s.Volumes {
			src, dst, _ := strings.Cut(v, ":")
			dst, ro, _ := strings.Cut(dst, ":")
			if _, declared := cf.Volumes[src]; !declared {
				t.Errorf("volume %s is not declared", src)
			}
			m[dst] = src + strings.TrimSuffix(":"+ro, ":")
		}
		return m
	}
	pkiMounts := mounts(pki)

	// Run the PKI step for real, its volumes as directories.
	tmp := t.TempDir()
	remap := func(p string) string {
		for dst, vol := range pkiMounts {
			if p == dst || strings.HasPrefix(p, dst+"/") {
				return filepath.Join(tmp, strings.TrimSuffix(vol, ":ro"), strings.TrimPrefix(p, dst))
			}
		}
		return p
	}
	if len(pki.Command) != 1 {
		t.Fatalf("pki command: want one shell script, got %d", len(pki.Command))
	}
	script := strings.ReplaceAll(pki.Command[0], "$$", "$")
	cmds, other := depCairnLines(script, map[string]string{})
	if len(cmds) == 0 {
		t.Fatal("the pki script runs no cairn command")
	}
	for _, c := range cmds {
		depRun(t, "pki script", c, nil)
		for i := range c {
			c[i] = remap(c[i])
		}
		depExec(t, c)
	}
	for _, o := range other { // cp of the CA certificate into the shared volume
		if o[0] == "cp" && len(o) == 3 {
			b, err := os.ReadFile(remap(o[1]))
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(remap(o[2]), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}

	var members, peerAddrs []string
	cfgs := map[string]server.Config{}
	dataVolumes := map[string]string{}
	for name, s := range cf.Services {
		if name == "pki" {
			continue
		}
		members = append(members, name)
		checkHardened(t, name, s)
		if s.Image != "cairn:dev" || s.Build.Dockerfile != "deploy/docker/Dockerfile" || s.Build.Target != "" {
			t.Errorf("service %s: image %q build %+v, want the server image", name, s.Image, s.Build)
		}
		if s.DependsOn["pki"].Condition != "service_completed_successfully" {
			t.Errorf("service %s does not wait for pki to complete", name)
		}
		cfg := depRun(t, "compose service "+name, s.Command, nil)
		if cfg.Name != name || s.Hostname != name {
			t.Errorf("service %s: --name %q, hostname %q", name, cfg.Name, s.Hostname)
		}
		host, _ := depHost(t, cfg.PeerAddr)
		if addrHost, _ := depHost(t, cfg.Addr); host != name || addrHost != name {
			t.Errorf("service %s advertises %s and %s, want its service name", name, cfg.Addr, cfg.PeerAddr)
		}
		peerAddrs = append(peerAddrs, cfg.PeerAddr)
		m := mounts(s)
		vol, ok := m[cfg.DataDir]
		if !ok || strings.HasSuffix(vol, ":ro") {
			t.Errorf("service %s: data dir %s is not on a writable volume", name, cfg.DataDir)
		} else if other, dup := dataVolumes[vol]; dup {
			t.Errorf("services %s and %s share the data volume %s", name, other, vol)
		}
		dataVolumes[vol] = name
		dir := filepath.Dir(cfg.CertFile)
		if m[dir] != "pki:ro" || filepath.Dir(cfg.KeyFile) != dir || filepath.Dir(cfg.CAFile) != dir {
			t.Errorf("service %s: certificates %s %s %s, want them in the pki volume, read-only", name, cfg.CAFile, cfg.CertFile, cfg.KeyFile)
			continue
		}
		// The files the pki step made are the ones this member loads, valid
		// for the names it is dialed at and the published port's localhost.
		in := func(p string) string { return filepath.Join(tmp, "pki", filepath.Base(p)) }
		depCheckNodeCert(t, in(cfg.CertFile), in(cfg.KeyFile), name, host, "localhost")
		if _, err := os.Stat(in(cfg.CAFile)); err != nil {
			t.Errorf("service %s: %v", name, err)
		}
		_, client := depHost(t, cfg.Addr)
		_, dns := depHost(t, cfg.DNSAddr)
		var published []string
		for _, p := range s.Ports {
			i := strings.LastIndex(p, ":")
			published = append(published, p[i+1:])
		}
		slices.Sort(published)
		if want := []string{client, dns + "/tcp", dns + "/udp"}; !slices.Equal(published, want) {
			t.Errorf("service %s publishes container ports %v, want %v", name, published, want)
		}
		cfgs[name] = cfg
	}
	if len(members) != 3 {
		t.Errorf("members %v, want 3", members)
	}
	for name, cfg := range cfgs {
		if !depSameSet(cfg.Peers, peerAddrs) {
			t.Errorf("service %s: --peers %v, want every member's peer address %v", name, cfg.Peers, peerAddrs)
		}
	}
	if _, err := os.Stat(filepath.Join(tmp, "pki", "root.crt")); err != nil {
		t.Errorf("the pki step issues no client certificate root (docs/deployment.md uses it): %v", err)
	}
}

// depDocSection returns the shell code blocks of one "## " section of
// docs/deployment.md.
func depDocSection(t *testing.T, heading string) string {
	t.Helper()
	doc := string(depRead(t, "docs/deployment.md"))
	i := strings.Index(doc, "\n"+heading+"\n")
	if i < 0 {
		t.Fatalf("docs/deployment.md has no section %q", heading)
	}
	doc = doc[i+1:]
	if j := strings.Index(doc[len(heading):], "\n## "); j >= 0 {
		doc = doc[:len(heading)+j]
	}
	var code strings.Builder
	for _, blk := range regexp.MustCompile("(?s)```sh\n(.*?)```").FindAllStringSubmatch(doc, -1) {
		code.WriteString(blk[1])
	}
	return code.String()
}

// Every cairn command line of the docs is accepted by the command tree, and
// the systemd section's certificates fit deploy/systemd/cairn.toml.
func TestDeployDocsCommands(t *testing.T) {
	for _, sec := range []string{"## systemd", "## Container image", "## Docker Compose"} {
		cmds, _ := depCairnLines(depDocSection(t, sec), map[string]string{})
		for _, c := range cmds {
			for i, a := range c {
				if a == "/etc/cairn/cairn.toml" {
					c[i] = filepath.Join(deployRoot, "deploy/systemd/cairn.toml")
				}
			}
			depRun(t, "docs/deployment.md, "+sec, c, nil)
		}
	}
	toml := filepath.Join(deployRoot, "deploy/systemd/cairn.toml")
	cfg := depRun(t, "cairn.toml", []string{"serve", "--config", toml}, nil)
	cmds, _ := depCairnLines(depDocSection(t, "## systemd"), map[string]string{})
	t.Chdir(t.TempDir())
	for _, c := range cmds {
		if len(c) > 1 && (c[0] == "ca" || c[0] == "cert" && c[1] == "issue") {
			depExec(t, c)
		}
	}
	host, _ := depHost(t, cfg.PeerAddr)
	depCheckNodeCert(t, filepath.Join("pki", cfg.Name+".crt"), filepath.Join("pki", cfg.Name+".key"), cfg.Name, host)
}
