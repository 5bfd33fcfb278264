package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// WriteTable writes results as an aligned table: throughput, the latency
// percentiles in milliseconds, and the CPU time per request of the members
// and of the generator (Result.CPU; n/a when not measured).
func WriteTable(w io.Writer, results ...*Result) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "workload\tclients\trequests\terrors\tseconds\trate/s\tmean ms\tp50 ms\tp90 ms\tp99 ms\tp99.9 ms\tmax ms\tmembers CPU µs/req\tgenerator CPU µs/req\t")
	for _, r := range results {
		l := r.Latency
		members, generator := "n/a", "n/a"
		if r.CPU != nil {
			members, generator = fnum(r.CPU.Members, 1, 0), fnum(r.CPU.Generator, 1, 0)
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%.2f\t%.0f\t%.2f\t%.2f\t%.2f\t%.2f\t%.2f\t%.2f\t%s\t%s\t\n",
			r.Label, r.Clients, r.Requests, r.Errors, r.Seconds, r.Rate, l.Mean, l.P50, l.P90, l.P99, l.P999, l.Max, members, generator)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, r := range results {
		if r.Errors > 0 {
			var kinds []string
			for k, n := range r.ErrorKinds {
				kinds = append(kinds, fmt.Sprintf("%s: %d", k, n))
			}
			fmt.Fprintf(w, "%s: %d errors (%s); the first: %s\n", r.Label, r.Errors, strings.Join(kinds, ", "), r.FirstError)
		}
	}
	for _, r := range results {
		if r.Paced != nil {
			if err := writePaced(w, r); err != nil {
				return err
			}
		}
	}
	return nil
}

// WriteJSON writes v as indented JSON.
func WriteJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
