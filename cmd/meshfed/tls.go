package main

import (
	"fmt"
	"path/filepath"
	"time"

	"github.com/meshfed/meshfed/security"
	"github.com/spf13/cobra"
)

func init() { register(newTLSCmd) }

func newTLSCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "tls",
		Short: "Create a certificate authority and certificates for mutual TLS",
		Args:  exactArgs(0),
		RunE: func(*cobra.Command, []string) error {
			return usageError{fmt.Errorf("tls needs a subcommand (ca, cert)")}
		},
	}
	var caDir string
	var validity time.Duration
	ca := &cobra.Command{Use: "ca", Short: "Manage the certificate authority", Args: exactArgs(0),
		RunE: func(*cobra.Command, []string) error { return usageError{fmt.Errorf("ca needs a subcommand (create)")} }}
	caCreate := &cobra.Command{
		Use:   "create",
		Short: "Create a CA: meshfed-ca.pem (give it to every server, agent and client) and meshfed-ca-key.pem (keep it safe)",
		Args:  exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := security.CreateCA(caDir, validity); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "created %s and %s\n", filepath.Join(caDir, security.CACertFile), filepath.Join(caDir, security.CAKeyFile))
			return nil
		},
	}
	caCreate.Flags().StringVar(&caDir, "dir", ".", "directory to write the CA into")
	caCreate.Flags().DurationVar(&validity, "validity", 5*365*24*time.Hour, "how long the CA is valid")
	ca.AddCommand(caCreate)

	var (
		server, agent, clientName, cluster, out string
		hosts                                   []string
		certValidity                            time.Duration
		certCADir                               string
	)
	cert := &cobra.Command{Use: "cert", Short: "Issue certificates", Args: exactArgs(0),
		RunE: func(*cobra.Command, []string) error {
			return usageError{fmt.Errorf("cert needs a subcommand (create)")}
		}}
	certCreate := &cobra.Command{
		Use:   "create (--server NODE | --agent NAME --cluster CLUSTER | --client NAME)",
		Short: "Issue a server, agent or client certificate signed by the CA",
		Long: `Issue a certificate signed by the CA in --ca-dir. A server certificate is
also a client certificate (servers call each other). An agent certificate
binds the agent to its cluster: it can register only there. A client
certificate is for the CLI and other API users.`,
		Example: `  meshfed tls cert create --server s1 --host 10.0.0.1
  meshfed tls cert create --agent agent-a1 --cluster a
  meshfed tls cert create --client alice`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			req := security.CertRequest{Hosts: hosts, Validity: certValidity, Cluster: cluster}
			set := 0
			for _, c := range []struct {
				name string
				role security.Role
			}{{server, security.RoleServer}, {agent, security.RoleAgent}, {clientName, security.RoleClient}} {
				if c.name != "" {
					req.Name, req.Role = c.name, c.role
					set++
				}
			}
			if set != 1 {
				return usageError{fmt.Errorf("give exactly one of --server, --agent or --client")}
			}
			if req.Role == security.RoleAgent && cluster == "" {
				return usageError{fmt.Errorf("--agent needs --cluster")}
			}
			prefix := out
			if prefix == "" {
				prefix = fmt.Sprintf("%s-%s", req.Role, req.Name)
			}
			if err := security.IssueCert(certCADir, prefix, req); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "created %s.pem and %s-key.pem\n", prefix, prefix)
			return nil
		},
	}
	f := certCreate.Flags()
	f.StringVar(&server, "server", "", "issue a server certificate for this node ID")
	f.StringVar(&agent, "agent", "", "issue an agent certificate for this agent name")
	f.StringVar(&clientName, "client", "", "issue a client certificate for this user or tool")
	f.StringVar(&cluster, "cluster", "", "the cluster an agent certificate binds to")
	f.StringSliceVar(&hosts, "host", nil, "DNS name or IP the server is reached at (repeatable; localhost and 127.0.0.1 are always included)")
	f.StringVar(&certCADir, "ca-dir", ".", "directory holding the CA")
	f.StringVar(&out, "out", "", "path prefix of the files written (default ROLE-NAME)")
	f.DurationVar(&certValidity, "validity", 365*24*time.Hour, "how long the certificate is valid")
	cert.AddCommand(certCreate)
	cmd.AddCommand(ca, cert)
	return cmd
}
