package cluster

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"testing"
)

// raft's hclog lines arrive as slog records at their level, with their
// fields, except a follower's "failed to get previous log", which is debug.
func TestRaftLoggerLevels(t *testing.T) {
	var buf bytes.Buffer
	l := RaftLogger(slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})))
	l.Warn("previous log term mis-match", "ours", 3, "remote", 4)
	l.Warn(raftMissingPrevLog, "previous-index", 10, "last-index", 9)
	l.Info("entering follower state")
	l.Error("failed to append to logs", "error", "disk")
	want := []struct{ level, msg string }{
		{"WARN", "previous log term mis-match"},
		{"DEBUG", raftMissingPrevLog},
		{"INFO", "entering follower state"},
		{"ERROR", "failed to append to logs"},
	}
	dec := json.NewDecoder(&buf)
	for _, w := range want {
		var rec map[string]any
		if err := dec.Decode(&rec); err != nil {
			t.Fatalf("record for %q: %v", w.msg, err)
		}
		if rec["level"] != w.level || rec["msg"] != w.msg || rec["component"] != "raft" {
			t.Errorf("record %v, want level %s, msg %q, component raft", rec, w.level, w.msg)
		}
	}
	if dec.More() {
		t.Error("more records than lines logged")
	}
}
