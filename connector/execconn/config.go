package execconn

import (
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/meshfed/meshfed/agent/runtime/exec"
	"github.com/meshfed/meshfed/connector"
)

// config is an exec connector's decoded config.
type config struct {
	// command is the program and its arguments; never empty once valid.
	command []string
	// env is added to the process's minimal environment; nil: nothing.
	env map[string]string
	// dir is the working directory; empty: the agent's.
	dir string
	// maxBatch bounds the records a source returns per READ.
	maxBatch int
	// timeout bounds the handshake, a COMMIT and a sink's FLUSH answer;
	// a READ waits as long as the agent does.
	timeout time.Duration
	// stopGrace is how long Close waits for the process to exit.
	stopGrace time.Duration
	// processConfig is config.config as a JSON object, handed to the
	// process in OPEN.
	processConfig []byte
}

// processConfigKey holds the process's own settings, passed through.
const processConfigKey = "config"

func decodeConfig(values map[string]any) (config, error) {
	rest := make(map[string]any, len(values))
	for k, v := range values {
		if k != processConfigKey {
			rest[k] = v
		}
	}
	v := connector.NewValues(rest)
	c := config{
		command:   v.Strings("command"),
		env:       v.StringMap("env"),
		dir:       v.String("dir", ""),
		maxBatch:  v.Int("maxBatch", 1000, 1, 100_000),
		timeout:   v.Duration("timeout", 30*time.Second),
		stopGrace: v.Duration("stopGrace", 2*time.Second),
	}
	switch raw := values["command"]; {
	case raw == nil:
		v.Fail("command", "required: the program and its arguments, such as [python3, source.py]")
	case len(c.command) == 0:
		if l, isList := raw.([]any); isList && len(l) == 0 {
			v.Fail("command", "must name a program, got an empty list")
		}
	case c.command[0] == "":
		v.Fail("command[0]", "the program must not be empty")
	}
	for _, k := range slices.Sorted(maps.Keys(c.env)) {
		if k == "" || strings.ContainsAny(k, "=\x00") {
			v.Fail("env."+k, "%q is not an environment variable name", k)
		}
	}
	if c.timeout <= 0 {
		v.Fail("timeout", "must be positive, got %s", c.timeout)
	}
	if c.stopGrace < 0 {
		v.Fail("stopGrace", "must not be negative, got %s", c.stopGrace)
	}
	c.processConfig = []byte("{}")
	if pc, ok := values[processConfigKey]; ok && pc != nil {
		if _, isMap := pc.(map[string]any); !isMap {
			v.Fail(processConfigKey, "must be a map (the process's own settings), got %T", pc)
		} else if b, err := json.Marshal(pc); err != nil {
			v.Fail(processConfigKey, "cannot be encoded as JSON: %v", err)
		} else {
			c.processConfig = b
		}
	}
	return c, v.Err()
}

// validate checks a config at apply time; whether the program exists is
// checked on the agent that runs it, at open.
var validate = connector.Validator(decodeConfig)

// environ is the process's environment: the agent's PATH, LANG=C.UTF-8,
// MESHFED_EXEC_PROTOCOL, then env (which may override them).
func (c config) environ() []string {
	path := os.Getenv("PATH")
	if path == "" {
		path = "/usr/local/bin:/usr/bin:/bin"
	}
	m := map[string]string{
		"PATH":                  path,
		"LANG":                  "C.UTF-8",
		"MESHFED_EXEC_PROTOCOL": fmt.Sprint(exec.ProtocolVersion),
	}
	for k, v := range c.env {
		m[k] = v
	}
	out := make([]string, 0, len(m))
	for _, k := range slices.Sorted(maps.Keys(m)) {
		out = append(out, k+"="+m[k])
	}
	return out
}
