package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"sigs.k8s.io/yaml"
)

func init() { register(newConfigCmd) }

// cliConfig is the CLI's config file: named contexts, each a set of
// connection settings, and the one in use.
type cliConfig struct {
	CurrentContext string        `json:"currentContext,omitempty"`
	Contexts       []*cliContext `json:"contexts,omitempty"`
}

// cliContext is how to reach one federation's control plane. Empty fields
// leave the flag's own default.
type cliContext struct {
	Name      string `json:"name"`
	Server    string `json:"server,omitempty"`
	TLSCert   string `json:"tlsCert,omitempty"`
	TLSKey    string `json:"tlsKey,omitempty"`
	TLSCA     string `json:"tlsCA,omitempty"`
	TokenFile string `json:"tokenFile,omitempty"`
	Timeout   string `json:"timeout,omitempty"`
}

// contextSettings maps a context's fields to the global flags they fill
// and the environment variables that, when set, win over the context.
var contextSettings = []struct {
	flag string
	env  []string
	get  func(*cliContext) *string
}{
	{"server", []string{"MESHFED_SERVER"}, func(c *cliContext) *string { return &c.Server }},
	{"tls-cert", []string{"MESHFED_TLS_CERT"}, func(c *cliContext) *string { return &c.TLSCert }},
	{"tls-key", []string{"MESHFED_TLS_KEY"}, func(c *cliContext) *string { return &c.TLSKey }},
	{"tls-ca", []string{"MESHFED_TLS_CA"}, func(c *cliContext) *string { return &c.TLSCA }},
	{"token-file", []string{"MESHFED_TOKEN", "MESHFED_TOKEN_FILE"}, func(c *cliContext) *string { return &c.TokenFile }},
	{"timeout", nil, func(c *cliContext) *string { return &c.Timeout }},
}

// configPath is where the config file lives: $MESHFED_CONFIG, else
// meshfed/config.yaml in the user's config directory.
func configPath() (string, error) {
	if p := os.Getenv("MESHFED_CONFIG"); p != "" {
		return p, nil
	}
	dir, err := os.UserConfigDir()
	if err != nil {
		return "", fmt.Errorf("find the config file: %w (set MESHFED_CONFIG)", err)
	}
	return filepath.Join(dir, "meshfed", "config.yaml"), nil
}

// loadConfig reads the config file; a missing file is an empty config.
func loadConfig() (*cliConfig, string, error) {
	path, err := configPath()
	if err != nil {
		return nil, "", err
	}
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return &cliConfig{}, path, nil
	}
	if err != nil {
		return nil, path, fmt.Errorf("read config %s: %w", path, err)
	}
	var c cliConfig
	if err := yaml.UnmarshalStrict(data, &c); err != nil {
		return nil, path, fmt.Errorf("config %s: %w", path, err)
	}
	for i, ctx := range c.Contexts {
		if ctx == nil || ctx.Name == "" {
			return nil, path, fmt.Errorf("config %s: contexts[%d].name: required", path, i)
		}
	}
	return &c, path, nil
}

// save writes the config file atomically, readable by its owner only (it
// names key and token files).
func (c *cliConfig) save(path string) error {
	data, err := yaml.Marshal(c)
	if err != nil {
		return fmt.Errorf("encode config: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("write config: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".config-*")
	if err != nil {
		return fmt.Errorf("write config: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("write config %s: %w", tmp.Name(), err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write config %s: %w", tmp.Name(), err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("write config %s: %w", path, err)
	}
	return nil
}

func (c *cliConfig) find(name string) *cliContext {
	for _, ctx := range c.Contexts {
		if ctx.Name == name {
			return ctx
		}
	}
	return nil
}

func (c *cliConfig) names() []string {
	var out []string
	for _, ctx := range c.Contexts {
		out = append(out, ctx.Name)
	}
	return out
}

// applyContext fills the global flags the user did not set, on the command
// line or in the environment, from the context named by --context or the
// config's current one. Precedence: flag, environment, context, default.
func applyContext(cmd *cobra.Command) error {
	name := global.context
	if name == "" && os.Getenv("MESHFED_CONFIG") == "" {
		// Without --context, a missing config directory is no error.
		if _, err := os.UserConfigDir(); err != nil {
			return nil
		}
	}
	cfg, path, err := loadConfig()
	if err != nil {
		return usageError{err}
	}
	if name == "" {
		name = cfg.CurrentContext
	}
	if name == "" {
		return nil
	}
	ctx := cfg.find(name)
	if ctx == nil {
		return usageError{fmt.Errorf("context %q is not in %s (contexts: %v; see meshfed config get-contexts)", name, path, cfg.names())}
	}
	root := cmd.Root().PersistentFlags()
	for _, s := range contextSettings {
		v := *s.get(ctx)
		f := root.Lookup(s.flag)
		// A command's own flag of the same name (server --tls-cert) is not
		// the client setting a context holds.
		if v == "" || f == nil || cmd.Flags().Lookup(s.flag) != f || f.Changed || envSet(s.env) {
			continue
		}
		if s.flag == "token-file" && root.Lookup("token").Changed {
			continue
		}
		if err := f.Value.Set(v); err != nil {
			return usageError{fmt.Errorf("context %q in %s: %s: %w", name, path, s.flag, err)}
		}
	}
	return nil
}

func envSet(names []string) bool {
	for _, n := range names {
		if os.Getenv(n) != "" {
			return true
		}
	}
	return false
}

func newConfigCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "config",
		Short: "Manage contexts: named sets of servers, TLS files and token file",
		Long: `Manage the CLI's contexts, kept in $MESHFED_CONFIG or meshfed/config.yaml in
the user's config directory (~/.config/meshfed/config.yaml on Linux). A
context names the servers, the TLS files and the token file of one
federation; the current context fills every flag not given on the command
line or in the environment (MESHFED_SERVER, MESHFED_TLS_*, MESHFED_TOKEN*).
--context NAME uses another context for one command.`,
		Example: `  meshfed config set-context prod --server s1:7100,s2:7100 --tls-ca ca.pem --tls-cert cli.pem --tls-key cli-key.pem --token-file ~/.meshfed/prod.token
  meshfed config use-context prod
  meshfed config get-contexts`,
		Args: exactArgs(0),
		// The config commands manage contexts and apply none: set-context
		// takes a context's settings from the flags as typed, not from
		// another context. This replaces the root command's hook for every
		// subcommand.
		PersistentPreRunE: func(*cobra.Command, []string) error { return nil },
		RunE: func(cmd *cobra.Command, _ []string) error {
			return usageError{fmt.Errorf("config needs a subcommand (set-context, use-context, get-contexts, current-context, delete-context)")}
		},
	}
	cmd.AddCommand(newSetContextCmd(), newUseContextCmd(), newGetContextsCmd(), newCurrentContextCmd(), newDeleteContextCmd())
	return cmd
}

func newSetContextCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "set-context NAME [--server ...] [--tls-cert ...] [--tls-key ...] [--tls-ca ...] [--token-file ...] [--timeout ...]",
		Short: "Create a context or change the settings given (the first context made becomes current)",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, path, err := loadConfig()
			if err != nil {
				return err
			}
			if cmd.Flags().Changed("token") {
				return usageError{fmt.Errorf("--token: a context keeps a token file, not a secret (use --token-file)")}
			}
			ctx := cfg.find(args[0])
			if ctx == nil {
				ctx = &cliContext{Name: args[0]}
				cfg.Contexts = append(cfg.Contexts, ctx)
			}
			changed := 0
			var fsErr error
			cmd.Flags().Visit(func(f *pflag.Flag) {
				for _, s := range contextSettings {
					if s.flag != f.Name {
						continue
					}
					v := f.Value.String()
					if (s.flag == "tls-cert" || s.flag == "tls-key" || s.flag == "tls-ca" || s.flag == "token-file") && v != "" {
						abs, err := filepath.Abs(v)
						if err != nil {
							fsErr = fmt.Errorf("--%s: %w", s.flag, err)
						}
						v = abs
					}
					*s.get(ctx) = v
					changed++
				}
			})
			if fsErr != nil {
				return usageError{fsErr}
			}
			if cfg.CurrentContext == "" {
				cfg.CurrentContext = ctx.Name
			}
			if err := cfg.save(path); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "context %s: %d setting(s) written to %s\n", ctx.Name, changed, path)
			return nil
		},
	}
}

func newUseContextCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "use-context NAME",
		Short: "Make a context the current one",
		Args:  exactArgs(1),
		ValidArgsFunction: func(*cobra.Command, []string, string) ([]cobra.Completion, cobra.ShellCompDirective) {
			cfg, _, err := loadConfig()
			if err != nil {
				return nil, cobra.ShellCompDirectiveError
			}
			return cfg.names(), cobra.ShellCompDirectiveNoFileComp
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, path, err := loadConfig()
			if err != nil {
				return err
			}
			if cfg.find(args[0]) == nil {
				return fmt.Errorf("context %q is not in %s (contexts: %v; create it with meshfed config set-context)", args[0], path, cfg.names())
			}
			cfg.CurrentContext = args[0]
			if err := cfg.save(path); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "switched to context %s\n", args[0])
			return nil
		},
	}
}

func newGetContextsCmd() *cobra.Command {
	var output outputFlag
	cmd := &cobra.Command{
		Use:   "get-contexts",
		Short: "List the contexts, the current one marked",
		Args:  exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := output.check(); err != nil {
				return err
			}
			cfg, _, err := loadConfig()
			if err != nil {
				return err
			}
			return printContexts(cmd.OutOrStdout(), output.format, cfg)
		},
	}
	output.register(cmd, listingFormats...)
	return cmd
}

func printContexts(w io.Writer, format string, cfg *cliConfig) error {
	ctxs := slices.Clone(cfg.Contexts)
	sort.Slice(ctxs, func(i, j int) bool { return ctxs[i].Name < ctxs[j].Name })
	switch format {
	case formatJSON, formatYAML:
		if ctxs == nil {
			ctxs = []*cliContext{}
		}
		return printValue(w, format, ctxs)
	case formatName:
		var names []string
		for _, c := range ctxs {
			names = append(names, c.Name)
		}
		return printNames(w, "context", names)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	head := "CURRENT\tNAME\tSERVER\tTOKEN FILE"
	if format == formatWide {
		head += "\tTLS CA\tTLS CERT\tTLS KEY\tTIMEOUT"
	}
	fmt.Fprintln(tw, head)
	for _, c := range ctxs {
		cur := ""
		if c.Name == cfg.CurrentContext {
			cur = "*"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s", cur, c.Name, or(c.Server, "-"), or(c.TokenFile, "-"))
		if format == formatWide {
			fmt.Fprintf(tw, "\t%s\t%s\t%s\t%s", or(c.TLSCA, "-"), or(c.TLSCert, "-"), or(c.TLSKey, "-"), or(c.Timeout, "-"))
		}
		fmt.Fprintln(tw)
	}
	return tw.Flush()
}

func newCurrentContextCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "current-context",
		Short: "Print the current context's name",
		Args:  exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, path, err := loadConfig()
			if err != nil {
				return err
			}
			if cfg.CurrentContext == "" {
				return fmt.Errorf("no current context in %s (see meshfed config use-context)", path)
			}
			fmt.Fprintln(cmd.OutOrStdout(), cfg.CurrentContext)
			return nil
		},
	}
}

func newDeleteContextCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "delete-context NAME",
		Short: "Forget a context",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, path, err := loadConfig()
			if err != nil {
				return err
			}
			i := slices.IndexFunc(cfg.Contexts, func(c *cliContext) bool { return c.Name == args[0] })
			if i < 0 {
				return fmt.Errorf("context %q is not in %s (contexts: %v)", args[0], path, cfg.names())
			}
			cfg.Contexts = slices.Delete(cfg.Contexts, i, i+1)
			if cfg.CurrentContext == args[0] {
				cfg.CurrentContext = ""
			}
			if err := cfg.save(path); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "deleted context %s\n", args[0])
			return nil
		},
	}
}
