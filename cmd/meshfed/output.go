package main

// The -o flag of the commands that print what they read, and the encodings
// they share: a JSON list is one array, a YAML list one sequence (objects:
// one document each, so the output can be applied again), -o name one
// KIND/NAME per line, -o wide the table with more columns.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/spf13/cobra"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"sigs.k8s.io/yaml"
)

// Output formats.
const (
	formatTable = "table"
	formatWide  = "wide"
	formatJSON  = "json"
	formatYAML  = "yaml"
	formatName  = "name"
	formatText  = "text"
	formatDot   = "dot"
)

// listingFormats are the formats every listing command offers.
var listingFormats = []string{formatTable, formatWide, formatJSON, formatYAML, formatName}

// outputFlag is a command's -o flag: the format asked for and the formats
// the command offers, the first being the default.
type outputFlag struct {
	format  string
	formats []string
}

// register adds -o to cmd, offering formats (the first is the default),
// with shell completion of the formats.
func (o *outputFlag) register(cmd *cobra.Command, formats ...string) {
	o.formats = formats
	cmd.Flags().StringVarP(&o.format, "output", "o", formats[0], "output format: "+orList(formats))
	_ = cmd.RegisterFlagCompletionFunc("output", cobra.FixedCompletions(formats, cobra.ShellCompDirectiveNoFileComp))
}

// check refuses a format the command does not offer.
func (o *outputFlag) check() error {
	if slices.Contains(o.formats, o.format) {
		return nil
	}
	return usageError{fmt.Errorf("-o %q: use %s", o.format, orList(o.formats))}
}

// tabular reports whether the format is a table (plain or wide).
func (o *outputFlag) tabular() bool { return o.format == formatTable || o.format == formatWide }

// orList joins words as "a, b or c".
func orList(words []string) string {
	if len(words) < 2 {
		return strings.Join(words, "")
	}
	return strings.Join(words[:len(words)-1], ", ") + " or " + words[len(words)-1]
}

// printMessages prints msgs as one JSON array or one YAML sequence, every
// field shown (zero values too, so scripts see a stable shape).
func printMessages[M proto.Message](w io.Writer, format string, msgs []M) error {
	var buf bytes.Buffer
	buf.WriteByte('[')
	for i, m := range msgs {
		if i > 0 {
			buf.WriteByte(',')
		}
		b, err := protojson.MarshalOptions{EmitUnpopulated: true}.Marshal(m)
		if err != nil {
			return fmt.Errorf("encode %s: %w", format, err)
		}
		buf.Write(b)
	}
	buf.WriteByte(']')
	return printEncoded(w, format, buf.Bytes())
}

// printValue prints a Go value (JSON-tagged) as JSON or YAML.
func printValue(w io.Writer, format string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode %s: %w", format, err)
	}
	return printEncoded(w, format, b)
}

// printEncoded prints compact JSON indented, or converted to YAML.
func printEncoded(w io.Writer, format string, compact []byte) error {
	if format == formatYAML {
		out, err := yaml.JSONToYAML(compact)
		if err != nil {
			return fmt.Errorf("encode yaml: %w", err)
		}
		_, err = w.Write(out)
		return err
	}
	var buf bytes.Buffer
	if err := json.Indent(&buf, compact, "", "  "); err != nil {
		return fmt.Errorf("encode json: %w", err)
	}
	buf.WriteByte('\n')
	_, err := w.Write(buf.Bytes())
	return err
}

// printNames prints one KIND/NAME per line, the kind in lower case.
func printNames(w io.Writer, kind string, names []string) error {
	var buf bytes.Buffer
	for _, n := range names {
		fmt.Fprintf(&buf, "%s/%s\n", strings.ToLower(kind), n)
	}
	_, err := w.Write(buf.Bytes())
	return err
}
