package builtin

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"unicode"

	"github.com/meshfed/meshfed/sdk"
)

func init() {
	sdk.Register("identity", identity)
	sdk.Register("exclamation", exclamation)
	sdk.Register("word-split", wordSplit)
	sdk.Register("word-count", wordCount)
	sdk.Register("filter", filter)
	sdk.Register("route", route)
}

// identity forwards the message unchanged (key and properties included).
func identity(_ context.Context, _ sdk.Context, m *sdk.Message) ([]sdk.Output, error) {
	return []sdk.Output{{Key: m.Key, Payload: m.Payload, Properties: m.Properties}}, nil
}

// exclamation appends "!" to the payload.
func exclamation(_ context.Context, _ sdk.Context, m *sdk.Message) ([]sdk.Output, error) {
	out := make([]byte, 0, len(m.Payload)+1)
	out = append(append(out, m.Payload...), '!')
	return []sdk.Output{{Key: m.Key, Payload: out, Properties: m.Properties}}, nil
}

// wordSplit emits one message per word, keyed by the lower-cased word.
func wordSplit(_ context.Context, _ sdk.Context, m *sdk.Message) ([]sdk.Output, error) {
	words := strings.FieldsFunc(string(m.Payload), func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) && r != '\'' })
	out := make([]sdk.Output, 0, len(words))
	for _, w := range words {
		w = strings.ToLower(w)
		out = append(out, sdk.Output{Key: w, Payload: []byte(w)})
	}
	return out, nil
}

// wordCount counts each word (the payload, or the key when the payload is
// empty) in the function's state and emits "word count".
func wordCount(ctx context.Context, fctx sdk.Context, m *sdk.Message) ([]sdk.Output, error) {
	word := strings.TrimSpace(string(m.Payload))
	if word == "" {
		word = m.Key
	}
	if word == "" {
		return nil, nil
	}
	n, err := fctx.IncrCounter(ctx, word, 1)
	if err != nil {
		return nil, fmt.Errorf("count %q: %w", word, err)
	}
	return []sdk.Output{{Key: word, Payload: []byte(word + " " + strconv.FormatInt(n, 10))}}, nil
}

// filter passes JSON messages whose fields satisfy config "expr": terms
// joined by "&&", each `field OP value` with OP one of == != > >= < <=;
// value is a number, true/false, or a (quoted) string. Nested fields use dots.
func filter(_ context.Context, fctx sdk.Context, m *sdk.Message) ([]sdk.Output, error) {
	expr, _ := fctx.Config()["expr"].(string)
	if expr == "" {
		return nil, fmt.Errorf("filter: config.expr is required, e.g. \"temperature > 30 && site == 'a'\"")
	}
	terms, err := parseExpr(expr)
	if err != nil {
		return nil, fmt.Errorf("filter: config.expr: %w", err)
	}
	var doc map[string]any
	if err := json.Unmarshal(m.Payload, &doc); err != nil {
		return nil, fmt.Errorf("filter: payload is not a JSON object: %w", err)
	}
	for _, t := range terms {
		if !t.eval(doc) {
			return nil, nil
		}
	}
	return []sdk.Output{{Key: m.Key, Payload: m.Payload, Properties: m.Properties}}, nil
}

// route sends each message to the topic config "routes" maps its key to,
// or to config "default" (or the function's output topic when unset).
func route(_ context.Context, fctx sdk.Context, m *sdk.Message) ([]sdk.Output, error) {
	topic := ""
	if routes, ok := fctx.Config()["routes"].(map[string]any); ok {
		topic, _ = routes[m.Key].(string)
	}
	if topic == "" {
		topic, _ = fctx.Config()["default"].(string)
	}
	return []sdk.Output{{Topic: topic, Key: m.Key, Payload: m.Payload, Properties: m.Properties}}, nil
}
