package functionsapi

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"strings"
)

// MaxPackageSize bounds an uploaded package (the control plane's own bound).
const MaxPackageSize = 64 << 20

// maxFieldSize bounds every part of a form that is not the package.
const maxFieldSize = 1 << 20

// Form is a decoded multipart request body.
type Form struct {
	// Config is the functionConfig part (JSON); nil when absent.
	Config []byte
	// UpdateOptions is the updateOptions part (JSON); nil when absent.
	UpdateOptions []byte
	// URL is the url part: where the package is. Empty when absent.
	URL string
	// Data is the data part (the package file); nil when absent.
	Data []byte
	// DataName is the file name the data part carried.
	DataName string
	// State is the state part (FunctionState JSON) of a state put.
	State []byte
	// Path is the path part of an upload.
	Path string
	// DataStream is the dataStream part of a trigger (the value as a file).
	DataStream []byte
	// Topic is the topic part of a trigger.
	Topic string
}

// DecodeForm reads a multipart/form-data body. Parts it does not know are
// refused (never ignored), and so is a part given twice.
func DecodeForm(contentType string, body io.Reader) (*Form, error) {
	mt, params, err := mime.ParseMediaType(contentType)
	if err != nil {
		return nil, badRequest("Content-Type %q: %v", contentType, err)
	}
	if mt != "multipart/form-data" || params["boundary"] == "" {
		return nil, badRequest("Content-Type %q: want multipart/form-data with a boundary", contentType)
	}
	mr := multipart.NewReader(body, params["boundary"])
	f := &Form{}
	seen := map[string]bool{}
	for {
		p, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			return f, nil
		}
		if err != nil {
			return nil, badRequest("multipart body: %v", err)
		}
		name := p.FormName()
		if seen[name] {
			return nil, badRequest("multipart part %q: given twice", name)
		}
		seen[name] = true
		limit := int64(maxFieldSize)
		if name == "data" || name == "dataStream" {
			limit = MaxPackageSize
		}
		b, err := io.ReadAll(io.LimitReader(p, limit+1))
		if err != nil {
			return nil, badRequest("multipart part %q: %v", name, err)
		}
		if int64(len(b)) > limit {
			return nil, badRequest("multipart part %q: larger than %d bytes", name, limit)
		}
		switch name {
		case "functionConfig":
			f.Config = b
		case "updateOptions":
			f.UpdateOptions = b
		case "url":
			f.URL = strings.TrimSpace(string(b))
		case "data":
			f.Data, f.DataName = b, p.FileName()
		case "state":
			f.State = b
		case "path":
			f.Path = strings.TrimSpace(string(b))
		case "dataStream":
			f.DataStream = b
		case "topic":
			f.Topic = strings.TrimSpace(string(b))
		default:
			return nil, badRequest("multipart part %q: not a part of Pulsar's functions API (functionConfig, url, data, updateOptions, state, path, dataStream, topic)", name)
		}
	}
}

// wasmMagic opens every WebAssembly module.
var wasmMagic = []byte("\x00asm")

// isWasm reports whether data is a WebAssembly module.
func isWasm(data []byte) bool { return bytes.HasPrefix(data, wasmMagic) }

// packageKind names what a package is, for error messages.
func packageKind(data []byte) string {
	switch {
	case bytes.HasPrefix(data, []byte("PK\x03\x04")):
		return "a zip archive (a Java jar or Python zip)"
	case bytes.HasPrefix(data, []byte("\x7fELF")):
		return "a native executable"
	}
	return fmt.Sprintf("not a WebAssembly module (it starts %q)", data[:min(len(data), 4)])
}
