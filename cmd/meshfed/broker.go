package main

import (
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/meshfed/meshfed/telemetry"
	"github.com/spf13/cobra"

	"github.com/meshfed/meshfed/broker"
)

func init() { register(newBrokerCmd) }

func newBrokerCmd() *cobra.Command {
	var (
		cfg        broker.Config
		fsync      string
		noAuto     bool
		logLevel   string
		retainSize int64
		confFile   string
		settings   map[string]*string
	)
	cmd := &cobra.Command{
		Use:   "broker",
		Short: "Run the embedded Pulsar-protocol broker",
		Long: `Run meshfed's embedded broker: a single-node broker that speaks the Apache
Pulsar binary protocol (so pulsar-client-go and other Pulsar clients work
unchanged) and serves the admin REST subset tools need. Topics are stored
under --data-dir and survive restarts and kill -9.

Like a Pulsar broker it geo-replicates namespaces to other clusters. Configure
it through the admin API (pulsar-admin, pulsarctl or pulsaradmin), on every
broker: create the other clusters (PUT /admin/v2/clusters/{name} with their
serviceUrl and brokerServiceUrl), allow them for the tenant
(allowedClusters), and set the namespace's replication clusters
(POST /admin/v2/namespaces/{tenant}/{ns}/replication). --cluster-name must be
unique among the brokers replicating to each other. GET
/admin/v2/brokers/health answers "ok" after a produce and read-back through the
broker's own storage.

Security is configured with Pulsar's broker.conf names, as flags of the same
name or in a key=value file given with --config (flags win over the file;
keys the broker does not know are listed in the log and ignored):
brokerServicePortTls and webServicePortTls open pulsar+ssl:// and https://
listeners; authenticationEnabled with authenticationProviders (token, tls,
basic) authenticates clients; authorizationEnabled with superUserRoles and
namespace permissions (/admin/v2/namespaces/{tenant}/{ns}/permissions/{role})
authorizes them; brokerClientAuthenticationPlugin/Parameters and
brokerClientTrustCertsFilePath are the credentials replication uses.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			logger, err := newLogger(telemetry.LogText, logLevel)
			if err != nil {
				return err
			}
			cfg.Logger = logger
			cfg.Fsync = broker.FsyncPolicy(fsync)
			cfg.DisableAutoCreateTopics = noAuto
			cfg.RetentionSize = retainSize << 20
			adv, cluster := cfg.AdvertisedAddr, cfg.ClusterName
			var file map[string]string
			if confFile != "" {
				var ignored []string
				var err error
				if file, ignored, err = readBrokerConf(confFile); err != nil {
					return usageError{err}
				}
				if len(ignored) > 0 {
					cfg.Logger.Info("ignoring broker.conf settings this broker does not use", "count", len(ignored), "keys", strings.Join(ignored, ","))
				}
			}
			if err := applyBrokerSettings(&cfg, file, cmd.Flags(), settings); err != nil {
				return usageError{err}
			}
			if cmd.Flags().Changed("advertised-address") {
				cfg.AdvertisedAddr = adv
			}
			if cmd.Flags().Changed("cluster-name") {
				cfg.ClusterName = cluster
			}
			// Catch signals before serving so that a signal arriving right
			// after start-up still shuts down cleanly.
			sig := make(chan os.Signal, 1)
			signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
			defer signal.Stop(sig)
			b, err := broker.New(cfg)
			if err != nil {
				return err
			}
			if err := b.Start(); err != nil {
				b.Close()
				return err
			}
			s := <-sig
			cfg.Logger.Info("shutting down", "signal", s.String())
			return b.Close()
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.DataDir, "data-dir", "./meshfed-broker-data", "directory holding topic data, cursors and metadata")
	f.StringVar(&cfg.ListenAddr, "listen", "127.0.0.1:6650", "address of the Pulsar binary protocol listener")
	f.StringVar(&cfg.HTTPAddr, "http-addr", "127.0.0.1:8080", "address of the admin REST API and /metrics (empty disables it)")
	f.StringVar(&cfg.AdvertisedAddr, "advertised-address", "", "host or host:port returned to clients in lookups (default: the listen address)")
	f.StringVar(&cfg.ClusterName, "cluster-name", "standalone", "name of this broker's cluster: what other clusters call it, and replicated_from on what it replicates")
	f.StringVar(&fsync, "fsync", string(broker.FsyncBatch), "when to fsync: batch (group commit per batch of sends), always (one send per fsync) or off")
	f.BoolVar(&noAuto, "disable-auto-create-topics", false, "reject producers and consumers of topics that were not created through the admin API")
	f.BoolVar(&cfg.DeduplicationDefault, "deduplication", false, "enable producer de-duplication in namespaces that do not set it")
	f.DurationVar(&cfg.RetentionTime, "retention-time", 0, "keep consumed messages at least this long (0 keeps them forever unless --retention-size-mb applies)")
	f.Int64Var(&retainSize, "retention-size-mb", 0, "bound the consumed data kept per topic partition, in MiB (0 means no size bound)")
	f.Int64Var(&cfg.SegmentSize, "segment-size", 64<<20, "bytes after which a topic's log rolls to a new segment file; retention removes whole segments")
	f.IntVar(&cfg.MaxMessageSize, "max-message-size", 5<<20, "largest message (or batch) accepted, in bytes, announced to clients")
	f.StringVar(&logLevel, "log-level", "info", "log level: debug, info, warn or error")
	f.StringVar(&confFile, "config", "", "broker.conf-style file of key=value settings (the broker.conf-named flags below override it)")
	settings = addBrokerSettingFlags(f)
	return cmd
}
