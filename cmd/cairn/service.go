package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/cairnkv/cairn/cluster/v2client"
	"github.com/cairnkv/cairn/cmd/cairn/clientflags"
	"github.com/cairnkv/cairn/discovery"
	"github.com/cairnkv/cairn/store"
)

// newServiceCmd is `cairn service`: the registrations under the discovery
// prefix, as Consul's `catalog services` and `health service` show them.
func newServiceCmd(stdout, stderr io.Writer, environ []string) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "service",
		Short: "List registered services and their instances, with the DNS names that answer them",
	}
	var output, prefix, domain string
	list := &cobra.Command{
		Use:   "list [SERVICE]",
		Short: "List the services, or the instances of SERVICE, and the DNS names that answer them",
		Long: `List what is registered for discovery under --prefix (the server's
[discovery] prefix) in --domain (its [dns] domain), read with a
linearizable read.

Without SERVICE: one line per service, with its number of instances and
the DNS names that answer all of them: the service's name (A/AAAA and SRV)
and its RFC 2782 name (_SERVICE._tcp, SRV). With SERVICE (e.g. web, or
api.prod for a nested one): one line per instance, with its address
(host:port), the TTL left on its registration, and its own DNS name.

Keys whose value DNS ignores (not a valid SkyDNS record) are listed with
a warning on stderr. The exit status is 1 when SERVICE has no
registration.

The connection comes from --endpoints, --cert, --key and --cacert, else from
CAIRN_ENDPOINTS, CAIRN_CERT, CAIRN_KEY and CAIRN_CACERT, else from the
development PKI of a member on this machine (<data-dir>/pki) and
https://127.0.0.1:4001.`,
		Example: `  cairn service list --data-dir /tmp/cairn-dev
  cairn service list web --data-dir /tmp/cairn-dev
  cairn service list web -o json`,
		Args: cobra.MaximumNArgs(1),
	}
	cf := clientflags.Add(list.Flags())
	list.Flags().StringVarP(&output, "output", "o", "table", "output format: table or json")
	list.Flags().StringVar(&prefix, "prefix", discovery.DefaultPrefix, "key directory of SkyDNS data (the server's [discovery] prefix)")
	list.Flags().StringVar(&domain, "domain", discovery.DefaultDomain, "DNS domain of registrations (the server's [dns] domain)")
	list.RunE = func(cmd *cobra.Command, args []string) error {
		if output != "table" && output != "json" {
			return fmt.Errorf("unsupported output format %q: use table or json", output)
		}
		dc := discovery.Config{Prefix: prefix, Domain: domain}
		service := ""
		if len(args) == 1 {
			service = args[0]
		}
		c, err := cf.Client(environ)
		if err != nil {
			return err
		}
		defer c.Close()
		ctx := cmd.Context()
		if ctx == nil {
			ctx = context.Background()
		}
		entries, err := serviceCatalog(ctx, c, dc, service)
		if err != nil {
			return clientflags.WithHints(err)
		}
		for _, e := range entries {
			if e.Err != nil {
				fmt.Fprintf(stderr, "warning: %s is not answered in DNS: %v\n", e.Key, e.Err)
			}
		}
		if service == "" {
			return printServices(stdout, dc, entries, output)
		}
		return printInstances(stdout, dc, service, entries, output)
	}
	cmd.AddCommand(list)
	return cmd
}

// serviceCatalog reads the registrations of service ("" for all) from
// the cluster.
func serviceCatalog(ctx context.Context, c *v2client.Client, dc discovery.Config, service string) ([]discovery.Entry, error) {
	dir, err := dc.ServiceDir(service)
	if err != nil {
		return nil, err
	}
	ev, err := c.Get(ctx, dir, v2client.GetOptions{Recursive: true, Sorted: true})
	var se *store.Error
	switch {
	case errors.As(err, &se) && se.ErrorCode == store.EcodeKeyNotFound && service != "":
		return nil, fmt.Errorf("service %s has no registration (no key %s)", service, dir)
	case errors.As(err, &se) && se.ErrorCode == store.EcodeKeyNotFound:
		return nil, nil
	case err != nil:
		return nil, err
	}
	entries := dc.ServiceCatalog(ev.Node, service)
	if service != "" && len(entries) == 0 {
		return nil, fmt.Errorf("service %s has no registration under %s", service, dir)
	}
	return entries, nil
}

func printServices(w io.Writer, dc discovery.Config, entries []discovery.Entry, output string) error {
	out := dc.Services(entries)
	if output == "json" {
		return writeJSON(w, out)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SERVICE\tINSTANCES\tDNS NAMES")
	for _, s := range out {
		svc := s.Service
		if svc == "" {
			svc = "(apex)"
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\n", svc, s.Instances, strings.TrimSpace(s.Name+" "+s.SRVName))
	}
	return tw.Flush()
}

// instanceInfo is an instance as `service list SERVICE` shows it.
type instanceInfo struct {
	Instance string           `json:"instance"`
	Key      string           `json:"key"`
	Address  string           `json:"address"`
	TTL      int64            `json:"ttl"` // seconds left; 0: does not expire
	Name     string           `json:"name"`
	Record   discovery.Record `json:"record"`
	Error    string           `json:"error,omitempty"`
}

// serviceDetail is `service list SERVICE -o json`.
type serviceDetail struct {
	discovery.ServiceSummary
	InstanceList []instanceInfo `json:"instanceList"`
}

func printInstances(w io.Writer, dc discovery.Config, service string, entries []discovery.Entry, output string) error {
	name, srv, _ := dc.ServiceNames(service)
	d := serviceDetail{ServiceSummary: discovery.ServiceSummary{Service: strings.ToLower(strings.TrimSuffix(service, ".")), Name: name, SRVName: srv}}
	for _, e := range entries {
		in := instanceInfo{Instance: e.Instance, Key: e.Key, Address: e.Record.HostPort(), TTL: e.TTL, Name: e.Name, Record: e.Record}
		if e.Err != nil {
			in.Error = e.Err.Error()
		} else {
			d.Instances++
		}
		d.InstanceList = append(d.InstanceList, in)
	}
	if output == "json" {
		return writeJSON(w, d)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "INSTANCE\tADDRESS\tTTL\tDNS NAME")
	for _, in := range d.InstanceList {
		ttl, dnsName := "-", in.Name
		if in.TTL > 0 {
			ttl = strconv.FormatInt(in.TTL, 10) + "s"
		}
		if in.Error != "" {
			dnsName = "(ignored: " + in.Error + ")"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", in.Instance, in.Address, ttl, dnsName)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	noun := "instances"
	if d.Instances == 1 {
		noun = "instance"
	}
	_, err := fmt.Fprintf(w, "\n%d %s of %s, answered as %s (A/AAAA, SRV) and %s (SRV)\n", d.Instances, noun, d.Service, name, srv)
	return err
}

func writeJSON(w io.Writer, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "%s\n", b)
	return err
}
