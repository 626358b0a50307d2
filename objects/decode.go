package objects

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	meshfedv1 "github.com/meshfed/meshfed/gen/meshfed/v1"
	"github.com/meshfed/meshfed/internal/errlist"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/reflect/protoreflect"
	"sigs.k8s.io/yaml"
)

// MaxInputSize is the largest input Decode accepts, in bytes.
const MaxInputSize = 8 << 20

// maxErrors bounds the errors reported for one input; more are summarized.
const maxErrors = 100

// DecodeOptions adjust Decode. The zero value decodes meshfed documents only.
type DecodeOptions struct {
	// Cluster is the cluster a Function Mesh CRD document
	// (compute.functionmesh.io/v1alpha1) runs in: its functions read, write
	// and run there. Empty: such documents are refused unless every function
	// names its cluster with clusterName.
	Cluster string
	// AllowSystemKinds accepts Agent and Assignment documents, which only the
	// control plane writes. Leave it false for user input.
	AllowSystemKinds bool
	// Packages uploads the code of Function Mesh golang and python
	// runtimes. Nil: documents with such runtimes are refused.
	Packages PackageResolver
	// Clusters reads a Cluster, to check a Function Mesh pulsar block's
	// auth and TLS settings against. Nil: such settings are refused.
	Clusters ClusterLookup
	// OnSkip, when set, is told of each Kubernetes ConfigMap or Secret
	// document (doc numbers from 1), which is then skipped. Nil: such
	// documents are refused.
	OnSkip func(doc int, kind, name string)
}

// Decode reads the meshfed objects in a YAML or JSON file with default
// options. See DecodeOptions.Decode.
func Decode(filename string, data []byte) ([]*meshfedv1.Object, error) {
	return DecodeOptions{}.Decode(filename, data)
}

// Decode reads the objects in data, named filename in errors.
//
// YAML input may hold several documents separated by "---" lines; documents
// with no content (comments only) are skipped. JSON input is one object, a
// stream of objects, or an array of objects (each element counts as a
// document). Fields are accepted under their JSON (camelCase) or proto
// (snake_case) names. Every document needs apiVersion meshfed.io/v1 and a
// kind, or is a Function Mesh CRD (see crd.go).
//
// The returned objects are in document order: objects[i] came from document
// i+1. On any error Decode returns no objects and a FieldErrors listing every
// problem found, each naming the file, the document and the field path. The
// objects are decoded, not validated: call Validate on each.
func (o DecodeOptions) Decode(filename string, data []byte) ([]*meshfedv1.Object, error) {
	if len(data) > MaxInputSize {
		return nil, FieldErrors{{File: filename, Reason: fmt.Sprintf("input is %d bytes, more than the %d allowed", len(data), MaxInputSize)}}
	}
	docs := expandLists(splitInput(data))
	var all FieldErrors
	var out []*meshfedv1.Object
	firstDoc := map[string]int{} // object key -> document number
	for i, doc := range docs {
		n := i + 1
		w := &walker{}
		var obj *meshfedv1.Object
		if kind, name, ok := kubernetesDoc(doc.value); ok && doc.err == nil {
			if o.OnSkip != nil {
				o.OnSkip(n, kind, name)
				continue
			}
			w.errs.add("kind", "Kubernetes %s documents are not meshfed objects: a Function Mesh pulsarConfig's URLs and secrets come from the meshfed Cluster; remove this document, or convert the file with meshfed import, which skips it", kind)
		} else if doc.err != nil {
			w.errs.list = append(w.errs.list, doc.err)
		} else {
			obj = o.decodeDocument(w, doc.value)
		}
		if obj != nil && len(w.errs.list) == 0 {
			if key, display := objectKey(obj); key != "" {
				if prev, dup := firstDoc[key]; dup {
					w.errs.add("metadata.name", "%s %q is already defined in doc %d of this file", KindOf(obj).Name, display, prev)
				} else {
					firstDoc[key] = n
				}
			}
		}
		all = append(all, FieldErrors(w.errs.list).In(filename, n)...)
		out = append(out, obj)
		if len(all) > maxErrors {
			all = append(all[:maxErrors], &FieldError{File: filename, Reason: "too many errors; fix the ones above and try again"})
			break
		}
	}
	if len(all) > 0 {
		for _, e := range all {
			e.Path, e.Reason = errlist.Clip(e.Path, maxPathLen), errlist.Clip(e.Reason, maxReasonLen)
		}
		return nil, all
	}
	return out, nil
}

// rawDoc is one document of the input, as generic JSON values, or the error
// that kept it from being parsed.
type rawDoc struct {
	value any
	err   *FieldError
}

// splitInput cuts data into documents with content.
func splitInput(data []byte) []rawDoc {
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf"))
	trimmed := bytes.TrimLeft(data, " \t\r\n")
	if len(trimmed) > 0 && (trimmed[0] == '{' || trimmed[0] == '[') {
		return splitJSON(data)
	}
	return splitYAML(data)
}

// splitJSON reads a stream of JSON values; arrays contribute their elements.
// Syntax errors end the stream with a document holding the error.
func splitJSON(data []byte) []rawDoc {
	dec := json.NewDecoder(bytes.NewReader(data))
	var docs []rawDoc
	for {
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			if errors.Is(err, io.EOF) {
				return docs
			}
			return append(docs, rawDoc{err: &FieldError{Reason: "invalid JSON: " + strings.TrimPrefix(err.Error(), "json: ")}})
		}
		var elems []json.RawMessage
		if bytes.HasPrefix(bytes.TrimLeft(raw, " \t\r\n"), []byte("[")) {
			if err := json.Unmarshal(raw, &elems); err != nil {
				return append(docs, rawDoc{err: &FieldError{Reason: "invalid JSON: " + err.Error()}})
			}
		} else {
			elems = []json.RawMessage{raw}
		}
		for _, e := range elems {
			docs = append(docs, parseJSONDoc(e))
		}
	}
}

// parseJSONDoc converts one JSON document, already known to be well formed,
// to generic values. Keys set twice in one object are an error, as in YAML.
func parseJSONDoc(raw json.RawMessage) rawDoc {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if path, ok := jsonDuplicate(dec, ""); !ok {
		return rawDoc{err: &FieldError{Path: path, Reason: "set twice in the same object"}}
	}
	dec = json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return rawDoc{err: &FieldError{Reason: "invalid JSON: " + err.Error()}}
	}
	return rawDoc{value: v}
}

// jsonDuplicate reads one value from dec and reports the path of the first
// key that occurs twice in an object (ok=false). The value is well formed and
// at most 10000 levels deep (encoding/json's limit), so recursion is bounded.
func jsonDuplicate(dec *json.Decoder, path string) (string, bool) {
	tok, err := dec.Token()
	if err != nil {
		return "", true
	}
	switch tok {
	case json.Delim('{'):
		seen := map[string]bool{}
		for dec.More() {
			kt, err := dec.Token()
			if err != nil {
				return "", true
			}
			k, _ := kt.(string)
			if seen[k] {
				return join(path, k), false
			}
			seen[k] = true
			if p, ok := jsonDuplicate(dec, join(path, k)); !ok {
				return p, false
			}
		}
		_, _ = dec.Token()
	case json.Delim('['):
		for i := 0; dec.More(); i++ {
			if p, ok := jsonDuplicate(dec, index(path, i)); !ok {
				return p, false
			}
		}
		_, _ = dec.Token()
	}
	return "", true
}

// yamlLine finds line numbers in YAML parser errors, to make them file-relative.
var yamlLine = regexp.MustCompile(`line (\d+)`)

func splitYAML(data []byte) []rawDoc {
	var docs []rawDoc
	var cur bytes.Buffer
	startLine := 1 // file line of cur's first line
	line := 0
	flush := func() {
		if cur.Len() == 0 {
			return
		}
		doc, ok := parseYAMLDoc(cur.Bytes(), startLine)
		if ok {
			docs = append(docs, doc)
		}
		cur.Reset()
	}
	for len(data) > 0 {
		line++
		l := data
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			l, data = data[:i+1], data[i+1:]
		} else {
			data = nil
		}
		t := bytes.TrimRight(l, " \t\r\n")
		switch {
		case bytes.Equal(t, []byte("---")) || bytes.Equal(t, []byte("...")):
			flush()
			startLine = line + 1
		case bytes.HasPrefix(t, []byte("--- ")) || bytes.HasPrefix(t, []byte("---\t")):
			// A document start marker with content on the same line.
			flush()
			startLine = line
			cur.WriteString("   ")
			cur.Write(l[3:])
		default:
			cur.Write(l)
		}
	}
	flush()
	return docs
}

// parseYAMLDoc converts one YAML document to generic JSON values. It reports
// ok=false for a document without content.
func parseYAMLDoc(doc []byte, startLine int) (rawDoc, bool) {
	j, err := yaml.YAMLToJSONStrict(doc)
	if err != nil {
		msg := yamlLine.ReplaceAllStringFunc(err.Error(), func(s string) string {
			n, convErr := strconv.Atoi(strings.TrimPrefix(s, "line "))
			if convErr != nil {
				return s
			}
			return "line " + strconv.Itoa(n+startLine-1)
		})
		msg = strings.TrimPrefix(msg, "error converting YAML to JSON: ")
		msg = strings.TrimPrefix(msg, "yaml: ")
		msg = strings.ReplaceAll(msg, "unmarshal errors:\n  ", "")
		msg = strings.ReplaceAll(msg, "\n  ", "; ")
		return rawDoc{err: &FieldError{Reason: "invalid YAML: " + msg}}, true
	}
	if bytes.Equal(bytes.TrimSpace(j), []byte("null")) {
		return rawDoc{}, false
	}
	dec := json.NewDecoder(bytes.NewReader(j))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return rawDoc{err: &FieldError{Reason: "invalid YAML: " + err.Error()}}, true
	}
	return rawDoc{value: v}, true
}

// decodeDocument turns one document into an object, or returns nil with the
// errors in w.
func (o DecodeOptions) decodeDocument(w *walker, v any) *meshfedv1.Object {
	m, ok := v.(map[string]any)
	if !ok {
		w.errs.add("", "a document must be an object with apiVersion and kind, got %s", describe(v))
		return nil
	}
	av, ok := m["apiVersion"].(string)
	switch {
	case m["apiVersion"] == nil:
		w.errs.add("apiVersion", "required; set it to %s", APIVersion)
		return nil
	case !ok:
		w.typeError("apiVersion", "a string", m["apiVersion"])
		return nil
	case av == CRDAPIVersion:
		return o.decodeCRD(w, m)
	case av != APIVersion:
		w.errs.add("apiVersion", "unsupported apiVersion %q; meshfed objects use %s (or %s for a Function Mesh CRD)", av, APIVersion, CRDAPIVersion)
		return nil
	}
	kindName, ok := m["kind"].(string)
	switch {
	case m["kind"] == nil:
		w.errs.add("kind", "required; one of %s", strings.Join(userKindNames(), ", "))
		return nil
	case !ok:
		w.typeError("kind", "a string", m["kind"])
		return nil
	}
	k, err := LookupKind(kindName)
	if err != nil {
		w.errs.add("kind", "unknown kind %q; one of %s", kindName, strings.Join(userKindNames(), ", "))
		return nil
	}
	if k.Name != kindName {
		w.errs.add("kind", "unknown kind %q; did you mean %q?", kindName, k.Name)
		return nil
	}
	if k.System && !o.AllowSystemKinds {
		w.errs.add("kind", "%s objects are written by the control plane and cannot be applied", k.Name)
		return nil
	}
	msg := k.New()
	w.message("", m, msg.ProtoReflect())
	if len(w.errs.list) > 0 {
		return nil
	}
	return Wrap(msg)
}

// userKindNames lists the kinds users may apply.
func userKindNames() []string {
	var names []string
	for _, k := range Kinds {
		if !k.System {
			names = append(names, k.Name)
		}
	}
	return names
}

// objectKey returns the store key and display name of a decoded object
// without creating missing metadata. Both are empty when it has no name.
func objectKey(o *meshfedv1.Object) (key, display string) {
	k := KindOf(o)
	if k == nil {
		return "", ""
	}
	md := Unwrap(o).(metaHolder).GetMetadata()
	if md.GetName() == "" {
		return "", ""
	}
	r := RefTo(k.Name, md)
	return r.Key(), r.String()
}

// walker fills proto messages from generic JSON values, collecting errors
// with the path of each field.
type walker struct {
	errs errs
}

// message fills m from v, which must be a JSON object.
func (w *walker) message(path string, v any, m protoreflect.Message) {
	obj, ok := v.(map[string]any)
	if !ok {
		w.typeError(path, "an object", v)
		return
	}
	fields := m.Descriptor().Fields()
	seen := map[protoreflect.FieldNumber]string{}
	oneofs := map[protoreflect.FullName]string{}
	for _, key := range slices.Sorted(maps.Keys(obj)) {
		fd := fields.ByJSONName(key)
		if fd == nil {
			fd = fields.ByName(protoreflect.Name(key))
		}
		if fd == nil {
			w.errs.add(join(path, key), "%s", unknownField(key, fields))
			continue
		}
		fp := join(path, fd.JSONName())
		if prev, dup := seen[fd.Number()]; dup {
			w.errs.add(fp, "set twice, as %q and as %q", prev, key)
			continue
		}
		seen[fd.Number()] = key
		val := obj[key]
		if val == nil {
			continue // null leaves the field unset
		}
		if oo := fd.ContainingOneof(); oo != nil && !oo.IsSynthetic() {
			if prev, ok := oneofs[oo.FullName()]; ok {
				w.errs.add(path, "%s and %s are both set; set exactly one of %s", prev, fd.JSONName(), oneofNames(oo))
				continue
			}
			oneofs[oo.FullName()] = fd.JSONName()
		}
		w.field(fp, fd, val, m)
	}
}

func (w *walker) field(path string, fd protoreflect.FieldDescriptor, v any, m protoreflect.Message) {
	switch {
	case fd.IsList():
		list, ok := v.([]any)
		if !ok {
			w.typeError(path, "a list", v)
			return
		}
		l := m.Mutable(fd).List()
		for i, e := range list {
			ep := index(path, i)
			if e == nil {
				w.errs.add(ep, "null is not allowed in a list")
				continue
			}
			if fd.Message() != nil {
				el := l.NewElement()
				w.message(ep, e, el.Message())
				l.Append(el)
				continue
			}
			if val, ok := w.scalar(ep, fd, e); ok {
				l.Append(val)
			}
		}
	case fd.IsMap():
		obj, ok := v.(map[string]any)
		if !ok {
			w.typeError(path, "an object of key: value pairs", v)
			return
		}
		mp := m.Mutable(fd).Map()
		for _, key := range slices.Sorted(maps.Keys(obj)) {
			kp := mapKey(path, key)
			mk, ok := w.scalar(kp, fd.MapKey(), key)
			if !ok {
				continue
			}
			val := obj[key]
			if val == nil {
				w.errs.add(kp, "null is not allowed as a value")
				continue
			}
			if fd.MapValue().Message() != nil {
				el := mp.NewValue()
				w.message(kp, val, el.Message())
				mp.Set(mk.MapKey(), el)
				continue
			}
			if mv, ok := w.scalar(kp, fd.MapValue(), val); ok {
				mp.Set(mk.MapKey(), mv)
			}
		}
	case fd.Message() != nil:
		if fd.Message().FullName().Parent() == "google.protobuf" {
			w.wellKnown(path, fd, v, m)
			return
		}
		w.message(path, v, m.Mutable(fd).Message())
	default:
		if val, ok := w.scalar(path, fd, v); ok {
			m.Set(fd, val)
		}
	}
}

// wellKnown decodes google.protobuf types (Struct, Timestamp) with protojson,
// which knows their JSON forms.
func (w *walker) wellKnown(path string, fd protoreflect.FieldDescriptor, v any, m protoreflect.Message) {
	name := fd.Message().Name()
	switch name {
	case "Struct":
		if _, ok := v.(map[string]any); !ok {
			w.typeError(path, "an object", v)
			return
		}
	case "Timestamp":
		if _, ok := v.(string); !ok {
			w.typeError(path, "an RFC 3339 time string", v)
			return
		}
	}
	b, err := json.Marshal(v)
	if err != nil {
		w.errs.add(path, "cannot encode value: %v", err)
		return
	}
	sub := m.NewField(fd).Message()
	if err := protojson.Unmarshal(b, sub.Interface()); err != nil {
		reason := "invalid " + string(name)
		if name == "Timestamp" {
			reason = "not an RFC 3339 time such as 2026-01-02T15:04:05Z"
		} else {
			reason += ": " + strings.TrimPrefix(err.Error(), "proto: ")
		}
		w.errs.add(path, "%s", reason)
		return
	}
	m.Set(fd, protoreflect.ValueOfMessage(sub))
}

// scalar converts a JSON scalar (or a map key, as a string) to the field's type.
func (w *walker) scalar(path string, fd protoreflect.FieldDescriptor, v any) (protoreflect.Value, bool) {
	switch fd.Kind() {
	case protoreflect.StringKind:
		s, ok := v.(string)
		if !ok {
			w.typeError(path, "a string", v)
			return protoreflect.Value{}, false
		}
		if !utf8.ValidString(s) {
			w.errs.add(path, "not valid UTF-8")
			return protoreflect.Value{}, false
		}
		return protoreflect.ValueOfString(s), true
	case protoreflect.BoolKind:
		if s, ok := v.(string); ok && fd.ContainingMessage().IsMapEntry() {
			b, err := strconv.ParseBool(s)
			if err == nil {
				return protoreflect.ValueOfBool(b), true
			}
		}
		b, ok := v.(bool)
		if !ok {
			w.typeError(path, "true or false", v)
			return protoreflect.Value{}, false
		}
		return protoreflect.ValueOfBool(b), true
	case protoreflect.Int32Kind, protoreflect.Sint32Kind, protoreflect.Sfixed32Kind:
		n, ok := w.integer(path, v, 32, true)
		return protoreflect.ValueOfInt32(int32(n)), ok
	case protoreflect.Int64Kind, protoreflect.Sint64Kind, protoreflect.Sfixed64Kind:
		n, ok := w.integer(path, v, 64, true)
		return protoreflect.ValueOfInt64(n), ok
	case protoreflect.Uint32Kind, protoreflect.Fixed32Kind:
		n, ok := w.integer(path, v, 32, false)
		return protoreflect.ValueOfUint32(uint32(n)), ok
	case protoreflect.Uint64Kind, protoreflect.Fixed64Kind:
		n, ok := w.unsigned64(path, v)
		return protoreflect.ValueOfUint64(n), ok
	case protoreflect.FloatKind, protoreflect.DoubleKind:
		num, ok := v.(json.Number)
		if !ok {
			w.typeError(path, "a number", v)
			return protoreflect.Value{}, false
		}
		f, err := strconv.ParseFloat(num.String(), 64)
		if err != nil || math.IsInf(f, 0) {
			w.errs.add(path, "not a finite number: %s", num)
			return protoreflect.Value{}, false
		}
		if fd.Kind() == protoreflect.FloatKind {
			return protoreflect.ValueOfFloat32(float32(f)), true
		}
		return protoreflect.ValueOfFloat64(f), true
	case protoreflect.EnumKind:
		s, ok := v.(string)
		if !ok {
			w.typeError(path, "one of "+enumNames(fd.Enum()), v)
			return protoreflect.Value{}, false
		}
		ev := fd.Enum().Values().ByName(protoreflect.Name(s))
		if ev == nil {
			w.errs.add(path, "unknown value %q; one of %s", s, enumNames(fd.Enum()))
			return protoreflect.Value{}, false
		}
		return protoreflect.ValueOfEnum(ev.Number()), true
	case protoreflect.BytesKind:
		s, ok := v.(string)
		if !ok {
			w.typeError(path, "a base64 string", v)
			return protoreflect.Value{}, false
		}
		b, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			w.errs.add(path, "not valid base64: %v", err)
			return protoreflect.Value{}, false
		}
		return protoreflect.ValueOfBytes(b), true
	}
	w.errs.add(path, "unsupported field type %s", fd.Kind())
	return protoreflect.Value{}, false
}

// integer parses a signed or 32-bit unsigned integer. Quoted numbers are
// accepted only for 64-bit fields, as protojson writes those.
func (w *walker) integer(path string, v any, bits int, signed bool) (int64, bool) {
	var s string
	switch t := v.(type) {
	case json.Number:
		s = t.String()
	case string:
		if bits != 64 {
			w.typeError(path, "an integer", v)
			return 0, false
		}
		s = t
	default:
		w.typeError(path, "an integer", v)
		return 0, false
	}
	n, err := strconv.ParseInt(s, 10, bits)
	if err != nil {
		return 0, w.badInteger(path, s, bits, signed)
	}
	if !signed && n < 0 {
		w.errs.add(path, "must not be negative, got %d", n)
		return 0, false
	}
	if !signed && bits == 32 && n > math.MaxUint32 {
		w.errs.add(path, "%s is out of range for a 32-bit unsigned integer", s)
		return 0, false
	}
	return n, true
}

// unsigned64 parses a uint64, accepting a quoted number as protojson writes it.
func (w *walker) unsigned64(path string, v any) (uint64, bool) {
	var s string
	switch t := v.(type) {
	case json.Number:
		s = t.String()
	case string:
		s = t
	default:
		w.typeError(path, "a non-negative integer", v)
		return 0, false
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, w.badInteger(path, s, 64, false)
	}
	return n, true
}

// badInteger explains why s is not an integer of the size wanted; it always
// returns false.
func (w *walker) badInteger(path, s string, bits int, signed bool) bool {
	f, err := strconv.ParseFloat(s, 64)
	switch {
	case err != nil && !isRangeErr(err):
		w.errs.add(path, "expected an integer, got %q", s)
	case !signed && f < 0:
		w.errs.add(path, "must not be negative, got %s", s)
	case err == nil && f != math.Trunc(f):
		w.errs.add(path, "expected an integer, got %s", s)
	default:
		kind := "integer"
		if !signed {
			kind = "unsigned integer"
		}
		w.errs.add(path, "%s is out of range for a %d-bit %s", s, bits, kind)
	}
	return false
}

func isRangeErr(err error) bool {
	ne, ok := err.(*strconv.NumError)
	return ok && ne.Err == strconv.ErrRange
}

// typeError reports a value of the wrong JSON type.
func (w *walker) typeError(path, want string, v any) {
	hint := ""
	switch v.(type) {
	case bool:
		if want == "a string" {
			hint = " (YAML reads unquoted yes, no, on, off, true and false as booleans: quote the value)"
		}
	case json.Number:
		if want == "a string" {
			hint = fmt.Sprintf(" (quote it: \"%s\")", v)
		}
	case string:
		if want == "a list" {
			hint = fmt.Sprintf(" (write [%q] for a list of one)", errlist.Clip(v.(string), 64))
		}
	}
	w.errs.add(path, "expected %s, got %s%s", want, describe(v), hint)
}

// describe names a generic JSON value for an error message.
func describe(v any) string {
	switch t := v.(type) {
	case nil:
		return "null"
	case string:
		return fmt.Sprintf("string %q", errlist.Clip(t, 64))
	case json.Number:
		return "number " + t.String()
	case bool:
		return fmt.Sprintf("boolean %t", t)
	case []any:
		return "a list"
	case map[string]any:
		return "an object"
	}
	return fmt.Sprintf("%T", v)
}

// unknownField explains an unknown key, suggesting the field the user most
// likely meant or listing the known ones.
func unknownField(key string, fields protoreflect.FieldDescriptors) string {
	norm := func(s string) string { return strings.ToLower(strings.ReplaceAll(s, "_", "")) }
	var names []string
	for i := 0; i < fields.Len(); i++ {
		fd := fields.Get(i)
		if norm(fd.JSONName()) == norm(key) || norm(string(fd.Name())) == norm(key) {
			return fmt.Sprintf("unknown field %q; did you mean %q?", key, fd.JSONName())
		}
		names = append(names, fd.JSONName())
	}
	return fmt.Sprintf("unknown field %q; known fields: %s", key, strings.Join(names, ", "))
}

func oneofNames(oo protoreflect.OneofDescriptor) string {
	var names []string
	for i := 0; i < oo.Fields().Len(); i++ {
		names = append(names, oo.Fields().Get(i).JSONName())
	}
	return strings.Join(names, ", ")
}

func enumNames(ed protoreflect.EnumDescriptor) string {
	var names []string
	for i := 0; i < ed.Values().Len(); i++ {
		names = append(names, string(ed.Values().Get(i).Name()))
	}
	return strings.Join(names, ", ")
}
