// Package python holds meshfed's Python SDK for exec functions
// (meshfed_function.py), embedded so tools can ship it inside packages.
package python

import _ "embed"

// SDK is the content of meshfed_function.py.
//
//go:embed meshfed_function.py
var SDK []byte

// SDKFile is the file name SDK is imported under.
const SDKFile = "meshfed_function.py"
