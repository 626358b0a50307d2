package objects

import (
	"bytes"
	"encoding/json"
	"fmt"

	meshfedv1 "github.com/meshfed/meshfed/gen/meshfed/v1"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"sigs.k8s.io/yaml"
)

// Normalize fills apiVersion and kind of o from the kind registry. It does
// nothing to an empty Object.
func Normalize(o *meshfedv1.Object) {
	k := KindOf(o)
	if k == nil {
		return
	}
	m := Unwrap(o).ProtoReflect()
	fields := m.Descriptor().Fields()
	m.Set(fields.ByName("api_version"), protoreflect.ValueOfString(APIVersion))
	m.Set(fields.ByName("kind"), protoreflect.ValueOfString(k.Name))
}

// Encode renders o for display or for editing and re-applying, as "json"
// (indented) or "yaml". Fields use their JSON (camelCase) names, unset fields
// are left out, and apiVersion and kind are filled in; o is not modified.
// The output decodes back to an equal object with Decode.
func Encode(o *meshfedv1.Object, format string) ([]byte, error) {
	if KindOf(o) == nil {
		return nil, fmt.Errorf("encode: empty object")
	}
	if format != "json" && format != "yaml" {
		return nil, fmt.Errorf("encode: unknown format %q (json or yaml)", format)
	}
	c := proto.Clone(o).(*meshfedv1.Object)
	Normalize(c)
	compact, err := protojson.Marshal(Unwrap(c))
	if err != nil {
		return nil, fmt.Errorf("encode %s: %w", DisplayName(o), err)
	}
	if format == "yaml" {
		out, err := yaml.JSONToYAML(escapeNonPrintable(compact))
		if err != nil {
			return nil, fmt.Errorf("encode %s: %w", DisplayName(o), err)
		}
		return out, nil
	}
	// protojson's own indentation is deliberately unstable; json.Indent is not.
	var buf bytes.Buffer
	if err := json.Indent(&buf, compact, "", "  "); err != nil {
		return nil, fmt.Errorf("encode %s: %w", DisplayName(o), err)
	}
	buf.WriteByte('\n')
	return buf.Bytes(), nil
}

// escapeNonPrintable rewrites the characters JSON leaves raw but YAML does
// not accept in a document (DEL, the C1 controls, U+FFFE and U+FFFF) as
// \u escapes. In protojson output they can only occur inside strings,
// where the escape means the same character, so the YAML encoder then
// writes them escaped and decoding gives the same string back.
func escapeNonPrintable(js []byte) []byte {
	if !bytes.ContainsFunc(js, yamlForbidden) {
		return js
	}
	var out bytes.Buffer
	for _, r := range string(js) {
		if yamlForbidden(r) {
			fmt.Fprintf(&out, "\\u%04x", r)
			continue
		}
		out.WriteRune(r)
	}
	return out.Bytes()
}

func yamlForbidden(r rune) bool {
	return r >= 0x7f && r <= 0x9f && r != 0x85 || r == 0xfffe || r == 0xffff
}
