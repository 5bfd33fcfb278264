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
