package bench

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
)

// CompareConfig is a side-by-side run of workloads on two clusters.
type CompareConfig struct {
	A, B Target
	// NameA and NameB label the two in the report (default "A", "B").
	NameA, NameB string
	Workloads    []Config
	// Rounds is the number of runs of each workload on each cluster,
	// alternated A, B, A, B, ... (default 3).
	Rounds int
}

// Comparison is the report of Compare. Each ratio is B over A: a rate
// ratio above 1 means B serves more per second, a latency ratio below 1
// means B answers sooner.
type Comparison struct {
	NameA  string       `json:"name_a"`
	NameB  string       `json:"name_b"`
	Rounds int          `json:"rounds"`
	Rows   []CompareRow `json:"rows"`
}

// CompareRow is one workload's medians on both clusters.
type CompareRow struct {
	Label   string `json:"label"`
	Clients int    `json:"clients"`
	Keys    int    `json:"keys,omitempty"` // get and refresh
	A       Side   `json:"a"`
	B       Side   `json:"b"`
	// RateRatio is B's median rate over A's; P99Ratio B's median p99
	// over A's.
	RateRatio float64 `json:"rate_ratio_b_over_a"`
	P99Ratio  float64 `json:"p99_ratio_b_over_a"`
	// CPURatio is B's median members' CPU per request over A's (0 when
	// either was not measured).
	CPURatio float64 `json:"cpu_ratio_b_over_a,omitempty"`
}

// Side is one cluster's medians over the rounds of one workload.
type Side struct {
	Rate float64 `json:"rate"`
	P50  float64 `json:"p50_ms"`
	P99  float64 `json:"p99_ms"`
	// CPU is the median of the members' CPU µs per request (Result.CPU),
	// over the rounds that measured it; 0 when none did.
	CPU    float64   `json:"cpu_us_per_request,omitempty"`
	Errors uint64    `json:"errors"` // over every round
	Runs   []*Result `json:"runs"`
}

// Compare runs each workload cc.Rounds times on A and on B, alternately,
// and reports the medians. The first run on each cluster writes the keys
// the workload needs; later rounds reuse them.
func Compare(ctx context.Context, cc CompareConfig, p *Progress) (*Comparison, error) {
	if cc.Rounds <= 0 {
		cc.Rounds = 3
	}
	if cc.NameA == "" {
		cc.NameA = "A"
	}
	if cc.NameB == "" {
		cc.NameB = "B"
	}
	out := &Comparison{NameA: cc.NameA, NameB: cc.NameB, Rounds: cc.Rounds}
	for _, w := range cc.Workloads {
		w, err := w.withDefaults()
		if err != nil {
			return nil, err
		}
		row := CompareRow{Label: w.Label(), Clients: w.Clients}
		if w.Workload == "get" || w.Workload == "refresh" {
			row.Keys = w.Keys // the keys read or refreshed
		}
		for round := range cc.Rounds {
			for _, side := range []struct {
				name string
				tg   Target
				s    *Side
			}{{cc.NameA, cc.A, &row.A}, {cc.NameB, cc.B, &row.B}} {
				c := w
				c.SkipSetup = round > 0
				p.printf("%s, %d clients, round %d of %d on %s\n", row.Label, w.Clients, round+1, cc.Rounds, side.name)
				r, err := Run(ctx, side.tg, c, p)
				if err != nil {
					return nil, fmt.Errorf("%s on %s: %w", row.Label, side.name, err)
				}
				side.s.Runs = append(side.s.Runs, r)
				side.s.Errors += r.Errors
			}
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
		}
		row.A.summarize()
		row.B.summarize()
		row.RateRatio = ratio(row.B.Rate, row.A.Rate)
		row.P99Ratio = ratio(row.B.P99, row.A.P99)
		if row.A.CPU > 0 {
			row.CPURatio = ratio(row.B.CPU, row.A.CPU)
		}
		out.Rows = append(out.Rows, row)
	}
	return out, nil
}

// cell is v with prec decimals, or n/a for 0 (not measured).
func cell(v float64, prec int) string {
	if v == 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.*f", prec, v)
}

func ratio(b, a float64) float64 {
	if a == 0 {
		return 0
	}
	return b / a
}

func (s *Side) summarize() {
	s.Rate = median(s.Runs, func(r *Result) float64 { return r.Rate })
	s.P50 = median(s.Runs, func(r *Result) float64 { return r.Latency.P50 })
	s.P99 = median(s.Runs, func(r *Result) float64 { return r.Latency.P99 })
	var measured []*Result
	for _, r := range s.Runs {
		if r.CPU != nil && r.CPU.Members != nil {
			measured = append(measured, r)
		}
	}
	s.CPU = median(measured, func(r *Result) float64 { return *r.CPU.Members })
}

// median of f over runs; the mean of the middle two for an even count.
func median(runs []*Result, f func(*Result) float64) float64 {
	if len(runs) == 0 {
		return 0
	}
	v := make([]float64, len(runs))
	for i, r := range runs {
		v[i] = f(r)
	}
	slices.Sort(v)
	n := len(v)
	if n%2 == 1 {
		return v[n/2]
	}
	return (v[n/2-1] + v[n/2]) / 2
}

// WriteTable writes the comparison as an aligned table, or as a Markdown
// table when markdown is true.
func (c *Comparison) WriteTable(w io.Writer, markdown bool) error {
	a, b := c.NameA, c.NameB
	head := []string{"workload", "clients", a + " rate/s", b + " rate/s", b + "/" + a + " rate",
		a + " p50 ms", b + " p50 ms", a + " p99 ms", b + " p99 ms", b + "/" + a + " p99",
		a + " CPU µs/req", b + " CPU µs/req", b + "/" + a + " CPU", "errors " + a + "/" + b}
	rows := [][]string{}
	for _, r := range c.Rows {
		label := r.Label
		if r.Keys > 0 {
			label += fmt.Sprintf(" (%d keys)", r.Keys)
		}
		rows = append(rows, []string{label, fmt.Sprint(r.Clients),
			fmt.Sprintf("%.0f", r.A.Rate), fmt.Sprintf("%.0f", r.B.Rate), fmt.Sprintf("%.2f", r.RateRatio),
			fmt.Sprintf("%.2f", r.A.P50), fmt.Sprintf("%.2f", r.B.P50),
			fmt.Sprintf("%.2f", r.A.P99), fmt.Sprintf("%.2f", r.B.P99), fmt.Sprintf("%.2f", r.P99Ratio),
			cell(r.A.CPU, 0), cell(r.B.CPU, 0), cell(r.CPURatio, 2), fmt.Sprintf("%d/%d", r.A.Errors, r.B.Errors)})
	}
	note := fmt.Sprintf("medians of %d alternating rounds (%s, %s, %s, %s, ...); ratios are %s/%s: a rate ratio above 1 means %s serves more, a p99 ratio below 1 means %s answers sooner, a CPU ratio below 1 means %s's members spend less CPU time per request (all members' process_cpu_seconds_total, summed)",
		c.Rounds, a, b, a, b, b, a, b, b, b)
	if markdown {
		fmt.Fprintf(w, "| %s |\n|%s\n", strings.Join(head, " | "), strings.Repeat("---|", len(head)))
		for _, r := range rows {
			fmt.Fprintf(w, "| %s |\n", strings.Join(r, " | "))
		}
		_, err := fmt.Fprintf(w, "\n%s.\n", strings.ToUpper(note[:1])+note[1:])
		return err
	}
	fmt.Fprintln(w, note)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	for _, r := range append([][]string{head}, rows...) {
		fmt.Fprintln(tw, strings.Join(r, "\t")+"\t")
	}
	return tw.Flush()
}
