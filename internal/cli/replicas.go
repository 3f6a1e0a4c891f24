package cli

import (
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

func (a *app) replicasCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "replicas",
		Short: "List the replicas of the configd cluster: who is up, at which revision",
		Long: `List the replicas of the configd cluster (configd --store etcd) that the
server is a replica of, as each registers itself in etcd: its name, the
address it serves on, its version, the newest revision it has applied, how
many revisions it is behind the newest replica, the sources it syncs and
since when it is up. '*' marks the replica that answered. A replica that
died leaves the list one --etcd-lease-ttl later. A configd that runs alone
(--store sqlite) has no replicas, and says so.`,
		Args: rangeArgs(0, 0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			r, err := c.Replicas(cmd.Context())
			if err != nil {
				return err
			}
			if ok, err := a.structured(r); ok {
				return err
			}
			if r.Store != "etcd" {
				fmt.Fprintf(a.stdout, "configd runs alone (--store %s) at revision %d: it has no replicas\n", r.Store, r.Rev)
				return nil
			}
			tw := newTable(a.stdout)
			fmt.Fprintln(tw, "NAME\tADDR\tVERSION\tREV\tLAG\tSOURCES\tUP SINCE")
			for _, s := range r.Replicas {
				name := s.Name
				if s.Self {
					name += " *"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%s\t%s\n", name, s.Addr, s.Version, s.Rev, s.Lag,
					dash(strings.Join(s.Sources, ",")), s.UpSince.Local().Format(time.DateTime))
			}
			return tw.Flush()
		},
	}
}
