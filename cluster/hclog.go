package cluster

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"

	"github.com/hashicorp/go-hclog"
)

// RaftLogger routes hashicorp/raft's hclog output into slog: raft writes
// JSON lines, each becomes one structured record at the matching level.
func RaftLogger(l *slog.Logger) hclog.Logger {
	return hclog.New(&hclog.LoggerOptions{
		Name:       "raft",
		Level:      hclog.Info,
		JSONFormat: true,
		Output:     &slogWriter{l: l},
	})
}

type slogWriter struct{ l *slog.Logger }

// raftMissingPrevLog is what raft warns when a follower is sent an
// AppendEntries that follows an entry it does not hold yet. The leader's
// commit notices (commitnotice.go) meet it whenever a follower is a little
// behind (about 1% of them under load), and the leader's own replication
// when one is far behind, which the leader reports itself ("appendEntries
// rejected, sending older logs"): on the follower it is debug, not a
// warning.
const raftMissingPrevLog = "failed to get previous log"

func (w *slogWriter) Write(p []byte) (int, error) {
	for line := range bytes.SplitSeq(bytes.TrimSpace(p), []byte("\n")) {
		var m map[string]any
		if err := json.Unmarshal(line, &m); err != nil {
			w.l.Info(string(line))
			continue
		}
		level := slog.LevelInfo
		switch m["@level"] {
		case "trace", "debug":
			level = slog.LevelDebug
		case "warn":
			level = slog.LevelWarn
		case "error":
			level = slog.LevelError
		}
		msg, _ := m["@message"].(string)
		if level == slog.LevelWarn && msg == raftMissingPrevLog {
			level = slog.LevelDebug
		}
		attrs := make([]slog.Attr, 0, len(m))
		for k, v := range m {
			if len(k) > 0 && k[0] == '@' {
				continue
			}
			attrs = append(attrs, slog.Any(k, v))
		}
		w.l.LogAttrs(context.Background(), level, msg, append(attrs, slog.String("component", "raft"))...)
	}
	return len(p), nil
}

var _ io.Writer = (*slogWriter)(nil)
