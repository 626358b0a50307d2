package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/meshfed/meshfed/client"
	"github.com/meshfed/meshfed/security"
	"github.com/meshfed/meshfed/telemetry"
	"github.com/spf13/cobra"
	"google.golang.org/grpc"
)

// subcommands collects the constructors registered by each subcommand's file.
var subcommands []func() *cobra.Command

// register adds a subcommand constructor; call it from an init function.
func register(f func() *cobra.Command) { subcommands = append(subcommands, f) }

// usageError marks errors caused by how the command was invoked (exit code 2).
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

// globalFlags are the flags every client command shares.
type globalFlags struct {
	server  string
	timeout time.Duration
	tls     security.Files
	// token is --token; empty: --token-file, then MESHFED_TOKEN, then
	// MESHFED_TOKEN_FILE (see bearerToken).
	token string
	// tokenFile is --token-file; empty: see token.
	tokenFile string
	// context is --context; empty: the config file's current context.
	context string
	// logFormat is --log-format (json or text); empty: MESHFED_LOG_FORMAT,
	// else the component's default (see newLogger).
	logFormat string
}

var global globalFlags

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:           "meshfed",
		Short:         "Federation control plane for serverless functions on Apache Pulsar",
		SilenceUsage:  true,
		SilenceErrors: true,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				return usageError{fmt.Errorf("unknown command %q for meshfed (see meshfed --help)", args[0])}
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
		// Settings not given as flags or in the environment come from the
		// config file's context.
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error { return applyContext(cmd) },
	}
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	def := os.Getenv("MESHFED_SERVER")
	if def == "" {
		def = "127.0.0.1:7100"
	}
	root.PersistentFlags().StringVar(&global.server, "server", def,
		"comma-separated gRPC addresses of control-plane servers, tried in order when one is down (env MESHFED_SERVER)")
	root.PersistentFlags().DurationVar(&global.timeout, "timeout", 30*time.Second, "deadline for each request to the control plane")
	root.PersistentFlags().StringVar(&global.tls.Cert, "tls-cert", os.Getenv("MESHFED_TLS_CERT"), "certificate for mutual TLS with the servers (env MESHFED_TLS_CERT)")
	root.PersistentFlags().StringVar(&global.tls.Key, "tls-key", os.Getenv("MESHFED_TLS_KEY"), "key of --tls-cert (env MESHFED_TLS_KEY)")
	root.PersistentFlags().StringVar(&global.tls.CA, "tls-ca", os.Getenv("MESHFED_TLS_CA"), "CA certificate that signed the servers' certificates (env MESHFED_TLS_CA)")
	// The token's default is not taken from the environment here, or
	// --help would print the secret.
	root.PersistentFlags().StringVar(&global.token, "token", "",
		"bearer token for servers run with --auth (env MESHFED_TOKEN; prefer --token-file: a flag is visible to other local users); needs --tls-*")
	root.PersistentFlags().StringVar(&global.tokenFile, "token-file", "",
		"file holding the bearer token, e.g. a server's <data-dir>/bootstrap-token (env MESHFED_TOKEN_FILE); needs --tls-*")
	root.PersistentFlags().StringVar(&global.context, "context", "", "config file context to take the servers, TLS files and token file from (default: the current one; see meshfed config)")
	root.PersistentFlags().StringVar(&global.logFormat, "log-format", "",
		"log format of meshfed server, agent, broker and dev: json or text; lines written inside a traced request carry trace_id and span_id (env MESHFED_LOG_FORMAT; default: json for server and agent, text for broker and dev)")
	for _, f := range subcommands {
		root.AddCommand(f())
	}
	return root
}

// newLogger returns the logger of a long-running component writing to
// stderr at level: in --log-format, else MESHFED_LOG_FORMAT, else def.
func newLogger(def, level string) (*slog.Logger, error) {
	return newLoggerTo(os.Stderr, def, level)
}

func newLoggerTo(w io.Writer, def, level string) (*slog.Logger, error) {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(level)); err != nil {
		return nil, usageError{fmt.Errorf("--log-level %q: use debug, info, warn or error", level)}
	}
	format, what := global.logFormat, "--log-format"
	if format == "" {
		format, what = os.Getenv("MESHFED_LOG_FORMAT"), "MESHFED_LOG_FORMAT"
	}
	if format == "" {
		format = def
	}
	l, err := telemetry.NewLogger(w, format, lvl)
	if err != nil {
		return nil, usageError{fmt.Errorf("%s: %w", what, err)}
	}
	return l, nil
}

// newClient connects to the servers named by --server (with mutual TLS
// when the --tls flags are set, presenting the bearer token when one is given).
func newClient() (*client.Client, error) {
	tok, err := bearerToken(global, os.Getenv)
	if err != nil {
		return nil, usageError{err}
	}
	opts, err := dialOptions(global.tls, tok)
	if err != nil {
		return nil, usageError{err}
	}
	return client.New(client.ParseAddrs(global.server), opts...)
}

// bearerToken returns the token to present: --token, else the contents of
// --token-file, else MESHFED_TOKEN, else the contents of the file
// MESHFED_TOKEN_FILE names; empty when none is set. A flag overrides the
// environment; two sources at the same level are an error, not a guess.
func bearerToken(g globalFlags, getenv func(string) string) (string, error) {
	tok, file := g.token, g.tokenFile
	what, fileWhat := "--token", "--token-file"
	if tok == "" && file == "" {
		tok, file = getenv("MESHFED_TOKEN"), getenv("MESHFED_TOKEN_FILE")
		what, fileWhat = "MESHFED_TOKEN", "MESHFED_TOKEN_FILE"
	}
	if tok != "" && file != "" {
		return "", fmt.Errorf("%s and %s are both set: give one", what, fileWhat)
	}
	given := tok != "" || file != ""
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return "", fmt.Errorf("%s: %w", fileWhat, err)
		}
		tok = string(b)
		what = fileWhat + " " + file
	}
	tok = strings.TrimSpace(tok)
	if tok == "" && given {
		return "", fmt.Errorf("%s is empty", what)
	}
	if strings.ContainsAny(tok, " \t\r\n") {
		return "", fmt.Errorf("%s holds more than one word: it should hold only the secret printed by meshfed token create", what)
	}
	return tok, nil
}

// dialOptions returns the transport credentials for f (none: plaintext)
// and, when token is set, presents it on every call. A token needs TLS: it
// must not cross the network in clear.
func dialOptions(f security.Files, token string) ([]grpc.DialOption, error) {
	if !f.Enabled() {
		if token != "" {
			return nil, fmt.Errorf("a token (--token, --token-file, MESHFED_TOKEN or MESHFED_TOKEN_FILE) needs mutual TLS: " +
				"also pass --tls-cert, --tls-key and --tls-ca (or set MESHFED_TLS_CERT, MESHFED_TLS_KEY and MESHFED_TLS_CA)")
		}
		return nil, nil
	}
	creds, err := f.ClientCredentials()
	if err != nil {
		return nil, err
	}
	opts := []grpc.DialOption{grpc.WithTransportCredentials(creds)}
	if token != "" {
		opts = append(opts, grpc.WithPerRPCCredentials(security.BearerToken(token)))
	}
	return opts, nil
}

// requestContext returns a context bounded by --timeout.
func requestContext(cmd *cobra.Command) (context.Context, context.CancelFunc) {
	return context.WithTimeout(cmd.Context(), global.timeout)
}

// exactArgs and rangeArgs are cobra argument checks whose errors exit with 2.
func exactArgs(n int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != n {
			return usageError{fmt.Errorf("%s takes %d argument(s), got %d (see --help)", cmd.CommandPath(), n, len(args))}
		}
		return nil
	}
}

func rangeArgs(lo, hi int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) < lo || len(args) > hi {
			return usageError{fmt.Errorf("%s takes %d to %d arguments, got %d (see --help)", cmd.CommandPath(), lo, hi, len(args))}
		}
		return nil
	}
}
