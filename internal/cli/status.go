package cli

import (
	"fmt"

	"github.com/spf13/cobra"
)

func (a *app) statusCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "status",
		Short: "Show configd's address, version and current revision",
		Args:  rangeArgs(0, 0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			st, err := c.Status(cmd.Context())
			if err != nil {
				return err
			}
			if ok, err := a.structured(st); ok {
				return err
			}
			_, err = fmt.Fprintf(a.stdout, "configd %s at %s, rev %d\n", st.Version, c.Addr(), st.Rev)
			return err
		},
	}
}

func (a *app) versionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print configctl's version",
		Long:  "Print configctl's version ('configctl status' shows configd's).",
		Args:  rangeArgs(0, 0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if ok, err := a.structured(map[string]string{"version": version()}); ok {
				return err
			}
			_, err := fmt.Fprintf(a.stdout, "configctl %s\n", version())
			return err
		},
	}
}
