package main

import (
	"encoding/json"
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/meshfed/meshfed/agent"
	"github.com/spf13/cobra"
)

// Set at link time to override what the build information says, e.g.
//
//	go build -ldflags "-X main.version=v0.4.0 -X main.commit=$(git rev-parse HEAD) -X main.buildTime=$(date -u +%Y-%m-%dT%H:%M:%SZ)" ./cmd/meshfed
//
// Empty: taken from the build information (runtime/debug.ReadBuildInfo).
var (
	version   string
	commit    string
	buildTime string
)

// buildVersion is what `meshfed version` prints.
type buildVersion struct {
	Version   string `json:"version"`
	Commit    string `json:"commit"`
	Modified  bool   `json:"modified,omitempty"`
	BuildTime string `json:"buildTime"`
	GoVersion string `json:"goVersion"`
	Platform  string `json:"platform"`
}

// versionOf combines the link-time overrides with the build information:
// the module version (set by `go install …@vX`, "(devel)" in a checkout),
// and the VCS revision, time and dirty flag that `go build` records when it
// runs in a git checkout with -buildvcs (the default there). What neither
// says is "unknown".
func versionOf(bi *debug.BuildInfo, ok bool, ldVersion, ldCommit, ldTime string) buildVersion {
	v := buildVersion{Version: "unknown", Commit: "unknown", BuildTime: "unknown", GoVersion: runtime.Version()}
	goos, goarch := runtime.GOOS, runtime.GOARCH
	if ok && bi != nil {
		if bi.GoVersion != "" {
			v.GoVersion = bi.GoVersion
		}
		if mv := bi.Main.Version; mv != "" {
			v.Version = mv
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				v.Commit = s.Value
			case "vcs.time":
				v.BuildTime = s.Value
			case "vcs.modified":
				v.Modified = s.Value == "true"
			case "GOOS":
				goos = s.Value
			case "GOARCH":
				goarch = s.Value
			}
		}
	}
	v.Platform = goos + "/" + goarch
	if ldVersion != "" {
		v.Version = ldVersion
	}
	if ldCommit != "" {
		v.Commit, v.Modified = ldCommit, false
	}
	if ldTime != "" {
		v.BuildTime = ldTime
	}
	return v
}

// currentVersion is this binary's version.
func currentVersion() buildVersion {
	bi, ok := debug.ReadBuildInfo()
	return versionOf(bi, ok, version, commit, buildTime)
}

func init() {
	// Agents report this version when they register.
	agent.Version = currentVersion().Version
	register(newVersionCmd)
}

func newVersionCmd() *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print the version, commit, build time and Go version of this binary",
		Long: `Print what this binary was built from: its version, the git commit (marked
"modified" when the working tree had changes), when it was built (the commit
time when only the build information says), the Go version and the platform.
Release builds set them with -ldflags "-X main.version=… -X main.commit=…
-X main.buildTime=…"; otherwise they come from the build information Go
embeds (runtime/debug.ReadBuildInfo), and what it lacks is "unknown".`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			v := currentVersion()
			switch output {
			case "json":
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(v)
			case "", "text":
				c := v.Commit
				if v.Modified {
					c += " (modified)"
				}
				fmt.Fprintf(cmd.OutOrStdout(), "meshfed %s\ncommit:     %s\nbuilt:      %s\ngo version: %s\nplatform:   %s\n", v.Version, c, v.BuildTime, v.GoVersion, v.Platform)
				return nil
			default:
				return usageError{fmt.Errorf("-o %q: use text or json", output)}
			}
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "text", "output format: text or json")
	return cmd
}
