package main

import (
	"context"
	"strings"
	"testing"

	"github.com/cairnkv/cairn/cluster/v2http"
	"github.com/cairnkv/cairn/cmd/cairn/server"
)

// readOnlyCluster hides MemberAdmin: the server then answers 501 to changes.
type readOnlyCluster struct{ v2http.Cluster }

// TestMemberCommands runs the member commands against a fake cluster:
// only the membership is real, and the fake can be made to refuse (a
// member can not be made to fail each way on cue).
func TestMemberCommands(t *testing.T) {
	_, dev := newDevPKI(t)
	tests := []struct {
		name     string
		mod      func(f *fakeMembers)
		readOnly bool
		args     []string
		stdout   string
		stderr   string
		err      string // substring of the error; "" for success
		adds     int    // AddMember calls
		removes  int    // RemoveMember calls
	}{
		{name: "list", args: []string{"list"}, stdout: "" +
			"1: name=node1 peerURLs=https://10.0.0.1:7001 clientURLs=https://10.0.0.1:4001 isLeader=true\n" +
			"2: name=node2 peerURLs=https://10.0.0.2:7001 clientURLs=https://10.0.0.2:4001,https://[::1]:4001 isLeader=false\n" +
			"3[unstarted]: peerURLs=https://10.0.0.3:7001\n"},
		{name: "list, another leader", mod: func(f *fakeMembers) { f.leader = 2 }, args: []string{"list"}, stdout: "" +
			"1: name=node1 peerURLs=https://10.0.0.1:7001 clientURLs=https://10.0.0.1:4001 isLeader=false\n" +
			"2: name=node2 peerURLs=https://10.0.0.2:7001 clientURLs=https://10.0.0.2:4001,https://[::1]:4001 isLeader=true\n" +
			"3[unstarted]: peerURLs=https://10.0.0.3:7001\n"},
		{name: "list during election", mod: func(f *fakeMembers) { f.leader = 0 }, args: []string{"list"},
			err: "failed to get leader: During election"},
		{name: "list with arguments", args: []string{"list", "x"}, err: "no arguments accepted"},

		{name: "add", args: []string{"add", "node4", "https://10.0.0.4:7001"}, adds: 1, stdout: "" +
			"Added member named node4 with ID 8e9e05c52164694d to cluster\n" +
			"\n" +
			`ETCD_NAME="node4"` + "\n" +
			`ETCD_INITIAL_CLUSTER="node1=https://10.0.0.1:7001,node2=https://10.0.0.2:7001,=https://10.0.0.3:7001,node4=https://10.0.0.4:7001"` + "\n" +
			`ETCD_INITIAL_CLUSTER_STATE="existing"` + "\n" +
			`CAIRN_NAME="node4"` + "\n" +
			`CAIRN_PEER_ADDR="10.0.0.4:7001"` + "\n" +
			`CAIRN_PEERS="10.0.0.1:7001,10.0.0.2:7001,10.0.0.3:7001"` + "\n"},
		{name: "add existing peer URL", args: []string{"add", "node4", "https://10.0.0.2:7001"}, adds: 1, err: "Peer URLs already exists"},
		{name: "add plain http", args: []string{"add", "node4", "http://10.0.0.4:7001"}, err: "URL scheme must be https: http://10.0.0.4:7001"},
		{name: "add no URL", args: []string{"add", "node4"}, err: "provide a name and a single member peerURL"},
		{name: "add two URLs", args: []string{"add", "node4", "https://a:1", "https://b:1"}, err: "provide a name and a single member peerURL"},
		{name: "add empty name", args: []string{"add", "", "https://a:1"}, err: "the member name must not be empty"},
		{name: "add read-only", readOnly: true, args: []string{"add", "node4", "https://10.0.0.4:7001"},
			err: "membership changes are not supported by this server"},

		{name: "remove", args: []string{"remove", "2"}, removes: 1, stdout: "Removed member 2 from cluster\n"},
		{name: "remove unstarted, ID with zeros", args: []string{"remove", "03"}, removes: 1, stdout: "Removed member 3 from cluster\n"},
		{name: "remove unknown", args: []string{"remove", "9"}, err: "couldn't find a member in the cluster with an ID of 9"},
		{name: "remove by name", args: []string{"remove", "node2"},
			stderr: "Found a member named node2; if this is correct, please use its ID, eg:\n\tcairn member remove 2\n\n",
			err:    "couldn't find a member in the cluster with an ID of node2"},
		{name: "remove refused", mod: func(f *fakeMembers) { f.removeErr = &memberErr{410, "removed"} }, args: []string{"remove", "2"}, removes: 1,
			err: "received an error trying to remove member 2: Member permanently removed: 2"},
		{name: "remove fails", mod: func(f *fakeMembers) { f.removeErr = context.DeadlineExceeded }, args: []string{"remove", "2"}, removes: 1,
			err: "received an error trying to remove member 2: Internal Server Error (HTTP 500 from https://127.0.0.1:"},
		{name: "add fails", mod: func(f *fakeMembers) { f.addErr = context.DeadlineExceeded }, args: []string{"add", "node4", "https://10.0.0.4:7001"}, adds: 1,
			err: "; its log says why); the change may or may not have been made: check with cairn member list"},
		{name: "remove no ID", args: []string{"remove"}, err: "provide a single member ID"},

		{name: "transfer-leader", args: []string{"transfer-leader"}, stdout: "Leadership transferred to node2 (2)\n"},
		{name: "transfer-leader to a name", args: []string{"transfer-leader", "--to", "node2"}, stdout: "Leadership transferred to node2 (2)\n"},
		{name: "transfer-leader to the leader", args: []string{"transfer-leader", "--to", "1"}, stdout: "Leadership transferred to node1 (1)\n"},
		{name: "transfer-leader to an unstarted member", args: []string{"transfer-leader", "--to", "3"}, err: "No such member: 3"},
		{name: "transfer-leader to nobody", args: []string{"transfer-leader", "--to", "nobody"},
			err: "No such member: nobody (give a member name or hex ID of cairn member list)"},
		{name: "transfer-leader read-only", readOnly: true, args: []string{"transfer-leader"},
			err: "leadership transfer is not supported by this server"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fm := newFakeMembers()
			if tt.mod != nil {
				fm.set(tt.mod)
			}
			var c v2http.Cluster = fm
			if tt.readOnly {
				c = readOnlyCluster{fm}
			}
			url := startMember(t, dev, c)
			args := append([]string{"member"}, tt.args...)
			args = append(args, "--endpoints", url, "--cacert", dev.CAFile, "--cert", dev.ClientCertFile, "--key", dev.ClientKeyFile)
			stdout, stderr, err := runCairn(t, nil, args...)
			switch {
			case tt.err == "" && err != nil:
				t.Fatalf("error %v", err)
			case tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)):
				t.Fatalf("error %v, want one containing %q", err, tt.err)
			}
			if stdout != tt.stdout {
				t.Errorf("stdout\n%s\nwant\n%s", stdout, tt.stdout)
			}
			if stderr != tt.stderr {
				t.Errorf("stderr %q, want %q", stderr, tt.stderr)
			}
			fm.mu.Lock()
			adds, removes := fm.adds, fm.removes
			fm.mu.Unlock()
			if adds != tt.adds || removes != tt.removes {
				t.Errorf("%d adds, %d removes; want %d, %d", adds, removes, tt.adds, tt.removes)
			}
		})
	}
}

// The join lines of `member add` name settings cairn serve knows: pasting
// them must not make serve refuse an unknown variable.
func TestMemberAddLinesAreSettings(t *testing.T) {
	known := map[string]bool{}
	for _, k := range server.Keys() {
		known[server.EnvName(k)] = true
	}
	for _, v := range []string{"CAIRN_NAME", "CAIRN_PEER_ADDR", "CAIRN_PEERS"} {
		if !known[v] {
			t.Errorf("member add prints %s, which cairn serve does not know", v)
		}
	}
}
