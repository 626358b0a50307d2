package telemetry

import (
	"regexp"
	"slices"
	"strings"
)

var (
	promqlStrings  = regexp.MustCompile("\"(?:[^\"\\\\]|\\\\.)*\"|'(?:[^'\\\\]|\\\\.)*'|`[^`]*`")
	promqlMatchers = regexp.MustCompile(`\{[^{}]*\}|\[[^\[\]]*\]`)
	promqlLabels   = regexp.MustCompile(`\b(by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)`)
	promqlIdent    = regexp.MustCompile(`[a-zA-Z_:][a-zA-Z0-9_:]*`)
	labelValues    = regexp.MustCompile(`^\s*label_values\(\s*(.*?)\s*,\s*[a-zA-Z_][a-zA-Z0-9_]*\s*\)\s*$`)
)

// promqlKeywords are identifiers PromQL reserves (operators, modifiers, literals).
var promqlKeywords = []string{"and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring",
	"group_left", "group_right", "inf", "nan", "Inf", "NaN", "atan2", "start", "end"}

// MetricNames returns the metric names a PromQL expression (or a Grafana
// label_values(metric, label) variable query) selects, sorted and without
// repeats. It is a lexer, not a parser: good enough to check that the
// shipped dashboard and alert rules name metrics meshfed exposes.
func MetricNames(expr string) []string {
	if m := labelValues.FindStringSubmatch(expr); m != nil {
		expr = m[1]
	}
	expr = promqlStrings.ReplaceAllString(expr, " ")
	for {
		next := promqlMatchers.ReplaceAllString(expr, " ")
		next = promqlLabels.ReplaceAllString(next, " ")
		if next == expr {
			break
		}
		expr = next
	}
	var names []string
	for _, loc := range promqlIdent.FindAllStringIndex(expr, -1) {
		name := expr[loc[0]:loc[1]]
		if loc[0] > 0 && (expr[loc[0]-1] >= '0' && expr[loc[0]-1] <= '9' || expr[loc[0]-1] == '.' || expr[loc[0]-1] == '$') {
			continue // a number's exponent or unit, or a Grafana variable
		}
		if strings.HasPrefix(strings.TrimLeft(expr[loc[1]:], " \t\n"), "(") || slices.Contains(promqlKeywords, name) {
			continue // a function call or a keyword
		}
		names = append(names, name)
	}
	slices.Sort(names)
	return slices.Compact(names)
}
