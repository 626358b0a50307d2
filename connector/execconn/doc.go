// Package execconn is the exec connector: a source or sink written in any
// language, run as a child process that speaks the exec connector
// protocol over its stdin and stdout (docs/exec-protocol.md, "Sources and
// sinks"). It registers the type "exec" as both a source and a sink.
//
//	sources:
//	- name: counter
//	  type: exec
//	  config:
//	    command: [python3, counter_source.py]
//	    env: {PYTHONPATH: /opt/meshfed/sdk/python}
//	    config: {every: 100ms}
//
// The process is one instance of the connector: when it crashes, breaks
// the protocol or times out, the call fails, and the agent closes the
// connector and opens it again after a backoff, which starts a new process.
package execconn
