package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/cairnkv/cairn/cluster"
	"github.com/cairnkv/cairn/cluster/v2client"
	"github.com/cairnkv/cairn/cluster/v2http"
	"github.com/cairnkv/cairn/cmd/cairn/clientflags"
	"github.com/cairnkv/cairn/cmd/cairn/server"
)

// serve's API takes backups: GET /cairn/v1/snapshot (v2client.SnapshotPath).
var _ v2http.Snapshotter = (*cluster.Node)(nil)

// restoreSettings are the settings of cairn serve that `snapshot restore`
// takes, resolved as serve resolves them (flag, CAIRN_*, --config file,
// default), so that the restored member is the one serve will start.
var restoreSettings = []string{"name", "data_dir", "addr", "peer.addr"}

func newSnapshotCmd(stdout, stderr io.Writer, environ []string) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "snapshot",
		Short: "Back up a cluster to a file, and make a new cluster from one",
		Long: `Back up a running cluster to one file (save), check a backup (status), and
create the data dir of a new one-member cluster from a backup (restore).

A backup holds every key, value, TTL (as absolute expiration times), the
store index and every createdIndex and modifiedIndex, the watch history and
the store counters. It is consistent: it holds every write acknowledged
before the save started, and nothing else than the store at one index.`,
		Example: `  cairn snapshot save backup.snap --data-dir /tmp/cairn-dev
  cairn snapshot status backup.snap
  cairn snapshot restore backup.snap --data-dir /tmp/cairn-restored
  cairn serve --data-dir /tmp/cairn-restored`,
	}
	cmd.AddCommand(newSnapshotSaveCmd(stdout, stderr, environ), newSnapshotRestoreCmd(stdout, environ),
		newSnapshotStatusCmd(stdout))
	return cmd
}

func newSnapshotSaveCmd(stdout, stderr io.Writer, environ []string) *cobra.Command {
	var cf *clientflags.Flags
	cmd := &cobra.Command{
		Use:   "save FILE",
		Short: "Download a consistent backup of the cluster into FILE",
		Long: `Download a consistent backup of the cluster from a member (GET
/cairn/v1/snapshot) into FILE. Any member serves it: it first confirms with
the leader that it has applied every acknowledged write. The download goes
to FILE.part, is synced to disk and checked completely (length, SHA-256,
and a full decode), then renamed to FILE; a cut download never leaves a
FILE behind. The backup holds every value: keep it as safe as the cluster's
data (it is written with mode 0600).

The connection comes from --endpoints, --cert, --key and --cacert, else from
CAIRN_ENDPOINTS, CAIRN_CERT, CAIRN_KEY and CAIRN_CACERT, else from the
development PKI of a member on this machine (<data-dir>/pki) and
https://127.0.0.1:4001. --timeout bounds the wait for the member's answer
and any pause of the download, not the whole download.`,
		Example: `  cairn snapshot save backup.snap --data-dir /tmp/cairn-dev
  cairn snapshot save /backups/cairn-$(date +%F).snap --endpoints https://10.0.0.1:4001,https://10.0.0.2:4001`,
		Args: exactArgs(1, "provide the file to save the backup to: cairn snapshot save FILE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := cf.Client(environ)
			if err != nil {
				return err
			}
			defer c.Close()
			ctx := cmd.Context()
			if ctx == nil {
				ctx = context.Background()
			}
			var progress io.Writer
			if isTerminal(stderr) {
				progress = stderr
			}
			return snapshotSave(ctx, c, args[0], stdout, progress)
		},
	}
	cf = clientflags.Add(cmd.Flags())
	return cmd
}

func newSnapshotRestoreCmd(stdout io.Writer, environ []string) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "restore FILE --data-dir DIR",
		Short: "Create the data dir of a new one-member cluster from a backup",
		Long: `Create DIR as the data dir of a new cluster with one member, holding the
state of the backup FILE: every key, value, TTL, index and the watch
history. The member and the cluster get new IDs; nothing of the old
cluster's membership is kept. Then start it with cairn serve and the same
--name, --data-dir and --peer-addr, and add members with empty data dirs
and --peers, as for any cluster.

DIR must not exist or be empty: a restore never overwrites a member's data.
TTLs are absolute times: keys whose time passed since the backup expire as
soon as the member starts. --name, --data-dir, --addr and --peer-addr are
resolved as cairn serve resolves them (flag, CAIRN_* variable, --config
file, default), so pass the same ones.`,
		Example: `  cairn snapshot restore backup.snap --data-dir /tmp/cairn-restored
  cairn serve --data-dir /tmp/cairn-restored`,
		Args: exactArgs(1, "provide the backup file: cairn snapshot restore FILE --data-dir DIR"),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfgFile, _ := cmd.Flags().GetString("config")
			cfg, _, err := server.Load(cmd.Flags(), cfgFile, environ)
			if err != nil {
				return err
			}
			return snapshotRestore(args[0], cfg, stdout)
		},
	}
	server.AddFlags(cmd.Flags(), restoreSettings...)
	cmd.Flags().String("config", "", "TOML configuration file of the member to be (default /etc/cairn/cairn.toml when present)")
	return cmd
}

func newSnapshotStatusCmd(stdout io.Writer) *cobra.Command {
	return &cobra.Command{
		Use:   "status FILE",
		Short: "Check a backup completely and describe it",
		Long: `Check the backup FILE as a restore would (length, SHA-256, a full decode)
and print what it holds. It exits with an error, saying what is wrong, for a
file that a restore would refuse.`,
		Args: exactArgs(1, "provide the backup file: cairn snapshot status FILE"),
		RunE: func(_ *cobra.Command, args []string) error {
			sum, err := cluster.VerifyBackup(args[0])
			if err != nil {
				return badBackup(err)
			}
			fmt.Fprintf(stdout, "file:         %s\n", args[0])
			fmt.Fprintf(stdout, "size:         %s (%d bytes)\n", humanBytes(sum.Bytes), sum.Bytes)
			fmt.Fprintf(stdout, "keys:         %d\n", sum.Keys)
			fmt.Fprintf(stdout, "directories:  %d\n", sum.Dirs)
			fmt.Fprintf(stdout, "with a TTL:   %d\n", sum.Expiring)
			fmt.Fprintf(stdout, "store index:  %d\n", sum.StoreIndex)
			fmt.Fprintf(stdout, "raft index:   %d\n", sum.RaftIndex)
			fmt.Fprintf(stdout, "taken:        %s on member %s (%x) of cluster %x\n",
				sum.Time.UTC().Format(time.RFC3339), sum.MemberName, sum.MemberID, sum.ClusterID)
			return nil
		},
	}
}

// snapshotSave downloads a backup into file (v2client.SaveSnapshot,
// checked by cluster.VerifyBackup) and prints a summary to stdout.
// progress, when not nil, gets a progress line.
func snapshotSave(ctx context.Context, c *v2client.Client, file string, stdout, progress io.Writer) error {
	start := time.Now()
	body, ep, err := c.Snapshot(ctx)
	if v2client.StatusCode(err) == http.StatusUnauthorized {
		return fmt.Errorf("snapshot: %w; a backup holds Cairn's private keys: it needs a node certificate (--cert node.crt --key node.key), or with authorization enabled the certificate of a user with the root role", err)
	}
	if err != nil {
		return fmt.Errorf("snapshot: %w", clientflags.WithHints(err))
	}
	defer body.Close()
	var sum cluster.BackupSummary
	o := v2client.SaveOptions{Verify: func(path string) (err error) { sum, err = cluster.VerifyBackup(path); return err }}
	var bar *progressBar
	if progress != nil {
		bar = &progressBar{out: progress, start: start, now: time.Now}
		o.Progress = bar
	}
	_, err = v2client.SaveSnapshot(body, file, o)
	if bar != nil {
		bar.done()
	}
	var serr *v2client.SaveError
	switch {
	case errors.As(err, &serr) && serr.Unusable:
		return fmt.Errorf("snapshot: the download from %s is not a usable backup, so it was not saved (%w); run the command again", ep, serr.Err)
	case errors.As(err, &serr):
		return fmt.Errorf("snapshot: download from %s cut after %s: %w; nothing was saved, run the command again", ep, humanBytes(serr.Bytes), serr.Err)
	case err != nil:
		return err
	}
	fmt.Fprintf(stdout, "Snapshot saved to %s: store index %d, raft index %d, %d keys, %d directories, %s in %s (from member %s at %s)\n",
		file, sum.StoreIndex, sum.RaftIndex, sum.Keys, sum.Dirs, humanBytes(sum.Bytes),
		time.Since(start).Round(time.Millisecond), sum.MemberName, ep)
	return nil
}

// snapshotRestore creates cfg's data dir from the backup file and says how
// to start it.
func snapshotRestore(file string, cfg server.Config, stdout io.Writer) error {
	res, err := cluster.RestoreBackup(cluster.RestoreConfig{Backup: file, DataDir: cfg.DataDir,
		Name: cfg.Name, PeerAddr: cfg.PeerAddr, ClientURLs: []string{"https://" + cfg.Addr}})
	if err != nil {
		return badBackup(err)
	}
	b := res.Backup
	fmt.Fprintf(stdout, "Restored %s into %s: %d keys, %d directories, store index %d (backup of member %s of cluster %x, taken %s).\n",
		file, cfg.DataDir, b.Keys, b.Dirs, b.StoreIndex, b.MemberName, b.ClusterID, b.Time.UTC().Format(time.RFC3339))
	fmt.Fprintf(stdout, "It is a new cluster %x with one member %x (name %s, peer address %s).\n",
		res.ClusterID, res.MemberID, cfg.Name, cfg.PeerAddr)
	fmt.Fprintf(stdout, "Start it with your TLS flags (without them it makes a new development PKI in %s;\n", filepath.Join(cfg.DataDir, "pki"))
	fmt.Fprintf(stdout, "copy the old member's pki directory there first to keep its certificates):\n")
	fmt.Fprintf(stdout, "  cairn serve --name %s --data-dir %s --addr %s --peer-addr %s\n", cfg.Name, cfg.DataDir, cfg.Addr, cfg.PeerAddr)
	fmt.Fprintf(stdout, "Then add members with empty data dirs and --peers %s.\n", cfg.PeerAddr)
	return nil
}

// badBackup adds what to do to a refused backup.
func badBackup(err error) error {
	if errors.Is(err, cluster.ErrBadBackup) {
		return fmt.Errorf("%w; take a new backup with cairn snapshot save, or use another copy", err)
	}
	return err
}

// progressBar prints the bytes received so far and the rate, on one line
// rewritten at most every 100 ms.
type progressBar struct {
	out   io.Writer
	start time.Time
	now   func() time.Time
	n     int64
	last  time.Time
}

func (p *progressBar) Write(b []byte) (int, error) {
	p.n += int64(len(b))
	if now := p.now(); now.Sub(p.last) >= 100*time.Millisecond {
		p.last = now
		p.draw(now)
	}
	return len(b), nil
}

func (p *progressBar) draw(now time.Time) {
	rate := ""
	if el := now.Sub(p.start).Seconds(); el > 0 {
		rate = fmt.Sprintf(" (%s/s)", humanBytes(int64(float64(p.n)/el)))
	}
	fmt.Fprintf(p.out, "\rDownloading snapshot: %s%s\x1b[K", humanBytes(p.n), rate)
}

// done draws the final count and ends the line.
func (p *progressBar) done() {
	p.draw(p.now())
	fmt.Fprint(p.out, "\n")
}

// humanBytes is n in B, KiB, MiB or GiB.
func humanBytes(n int64) string {
	const k = 1024
	switch {
	case n < k:
		return fmt.Sprintf("%d B", n)
	case n < k*k:
		return fmt.Sprintf("%.1f KiB", float64(n)/k)
	case n < k*k*k:
		return fmt.Sprintf("%.1f MiB", float64(n)/(k*k))
	}
	return fmt.Sprintf("%.2f GiB", float64(n)/(k*k*k))
}

// isTerminal reports whether w is a terminal (a character device).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
