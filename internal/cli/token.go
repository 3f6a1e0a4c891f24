package cli

import (
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/configd/configd/api"
)

func (a *app) tokenCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "token",
		Short: "Manage the bearer tokens configd accepts (needs an admin token)",
		Long: `Manage the bearer tokens configd accepts when authentication is on.

A token has a name, recorded as the actor of its writes, and grants: a
permission (read, write or admin; admin implies write, write implies read)
on a key prefix, which covers every key under it ("" covers every key).
configd keeps only a hash of each token: the token is shown once, when it is
created.`,
		Args: rangeArgs(0, 0, "a subcommand (create, ls, revoke, set-grants)"),
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	var name string
	var grants []string
	create := &cobra.Command{
		Use:   "create --name NAME --grant PERM:PREFIX...",
		Short: "Create a token and print it (shown only this once)",
		Example: `  configctl token create --name ci-deployer --grant write:app/ --grant read:
  TOKEN=$(configctl token create --name app-reader --grant read:app/ -o json | jq -r .token)`,
		Args: rangeArgs(0, 0, "no arguments (use --name and --grant)"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if name == "" {
				return usagef("token create: --name is required")
			}
			if len(grants) == 0 {
				return usagef("token create: give at least one --grant PERM:PREFIX (read:app/, write:, admin:)")
			}
			gs, err := parseGrants(grants)
			if err != nil {
				return err
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			t, err := c.CreateToken(cmd.Context(), name, gs)
			if err != nil {
				return err
			}
			if ok, err := a.structured(t); ok {
				return err
			}
			fmt.Fprintln(a.stdout, t.Token)
			fmt.Fprintf(a.stderr, "created token %s (%s); it is shown only this once\n", t.Name, grantList(t.Grants))
			return nil
		},
	}
	create.Flags().StringVar(&name, "name", "", "the token's name: letters, digits, - _ . @ (recorded as the actor of its writes)")
	create.Flags().StringArrayVar(&grants, "grant", nil, "PERM:PREFIX, PERM one of read, write, admin; repeatable (read: is every key)")

	ls := &cobra.Command{
		Use:   "ls",
		Short: "List tokens with their grants (never their secrets)",
		Args:  rangeArgs(0, 0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			ts, err := c.Tokens(cmd.Context())
			if err != nil {
				return err
			}
			if ok, err := a.structured(api.TokensResponse{Tokens: ts}); ok {
				return err
			}
			tw := newTable(a.stdout)
			fmt.Fprintln(tw, "NAME\tGRANTS\tCREATED\tREVOKED")
			for _, t := range ts {
				revoked := "-"
				if t.RevokedAt != nil {
					revoked = t.RevokedAt.Local().Format(time.DateTime)
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", t.Name, grantList(t.Grants), t.CreatedAt.Local().Format(time.DateTime), revoked)
			}
			return tw.Flush()
		},
	}
	revoke := &cobra.Command{
		Use:   "revoke NAME",
		Short: "Revoke a token: configd refuses it from now on",
		Args:  rangeArgs(1, 1, "the token's NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			if err := c.RevokeToken(cmd.Context(), args[0]); err != nil {
				return err
			}
			fmt.Fprintf(a.stderr, "revoked token %s\n", args[0])
			return nil
		},
	}
	var newGrants []string
	setGrants := &cobra.Command{
		Use:   "set-grants NAME --grant PERM:PREFIX...",
		Short: "Replace a token's grants (its open watches end if they reach a key it may no longer read)",
		Example: `  configctl token set-grants ci-deployer --grant write:app/
  configctl token set-grants billing --grant read:billing/ --grant read:shared/`,
		Args: rangeArgs(1, 1, "the token's NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(newGrants) == 0 {
				return usagef("token set-grants: give at least one --grant PERM:PREFIX (read:app/, write:, admin:); to take every right away, revoke the token")
			}
			gs, err := parseGrants(newGrants)
			if err != nil {
				return err
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			set, err := c.SetTokenGrants(cmd.Context(), args[0], gs)
			if err != nil {
				return err
			}
			if ok, err := a.structured(api.TokenInfo{Name: args[0], Grants: set}); ok {
				return err
			}
			fmt.Fprintf(a.stderr, "token %s now has %s\n", args[0], grantList(set))
			return nil
		},
	}
	setGrants.Flags().StringArrayVar(&newGrants, "grant", nil, "PERM:PREFIX, PERM one of read, write, admin; repeatable (read: is every key)")
	cmd.AddCommand(create, ls, revoke, setGrants)
	return cmd
}

// parseGrants parses --grant flags (PERM:PREFIX).
func parseGrants(flags []string) ([]api.Grant, error) {
	gs := make([]api.Grant, len(flags))
	for i, g := range flags {
		perm, prefix, ok := strings.Cut(g, ":")
		switch perm {
		case api.PermissionRead, api.PermissionWrite, api.PermissionAdmin:
		default:
			ok = false
		}
		if !ok {
			return nil, usagef("--grant %q: want PERM:PREFIX, PERM one of read, write, admin (read: is every key)", g)
		}
		gs[i] = api.Grant{Permission: perm, Prefix: prefix}
	}
	return gs, nil
}

func grantList(gs []api.Grant) string {
	s := make([]string, len(gs))
	for i, g := range gs {
		s[i] = g.Permission + ":" + g.Prefix
	}
	return strings.Join(s, " ")
}
