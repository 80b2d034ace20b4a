package apidoc_test

import (
	"flag"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the endpoint table in docs/integrating.md (and README.md) from docs/openapi.yaml")

const (
	tableBegin = "<!-- openapi-table:begin (generated from docs/openapi.yaml by go test ./internal/apidoc -update) -->"
	tableEnd   = "<!-- openapi-table:end -->"
)

// Codes every operation can answer; the table names them once, below it.
var commonCodes = []string{"query_too_long", "misconfigured", "internal", "unavailable"}

// renderTable renders the operations of the document as a Markdown table.
func renderTable(s *spec) string {
	var b strings.Builder
	b.WriteString("| Call | Auth | Success | Errors (status `code`) |\n|---|---|---|---|\n")
	for _, op := range s.operations() {
		if op.Method == "OPTIONS" {
			continue
		}
		o, _ := s.at(op.ptr)
		om := o.(map[string]any)
		var success, errs []string
		for _, st := range s.statuses(op) {
			raw, _ := s.at(fmt.Sprintf("%s/responses/%d", op.ptr, st))
			if ref, _ := raw.(map[string]any)["$ref"].(string); ref == "#/components/responses/QueryInvalid" {
				continue
			}
			_, p, _ := s.response(op.Method, op.Path, st)
			if st < 400 {
				what := ""
				if ref, ok := s.at(p + "/content/application~1json/schema/$ref"); ok {
					what = " " + strings.TrimPrefix(ref.(string), "#/components/schemas/")
				} else if alts, ok := s.at(p + "/content/application~1json/schema/oneOf"); ok {
					var names []string
					for _, a := range alts.([]any) {
						ref, _ := a.(map[string]any)["$ref"].(string)
						names = append(names, strings.TrimPrefix(ref, "#/components/schemas/"))
					}
					what = " " + strings.Join(names, " or ")
				} else if st == 302 {
					what = " redirect"
				}
				success = append(success, fmt.Sprintf("%d%s", st, what))
				continue
			}
			codes, provider := s.codes(p)
			var shown []string
			for _, c := range codes {
				if !slices.Contains(commonCodes, c) {
					shown = append(shown, "`"+c+"`")
				}
			}
			if provider {
				shown = append(shown, "Google's `error`")
			}
			if len(shown) > 0 {
				errs = append(errs, fmt.Sprintf("%d %s", st, strings.Join(shown, " ")))
			}
		}
		fmt.Fprintf(&b, "| `%s %s` — %s | %s | %s | %s |\n", op.Method, op.Path, om["summary"], auth(om), strings.Join(success, ", "), strings.Join(errs, " · "))
	}
	fmt.Fprintf(&b, "\nEvery call may also answer 414 `query_too_long`, 500 `misconfigured` or `internal`, 503 `unavailable` (with `Retry-After`), and 405 `method_not_allowed` for a method not listed. Full reference: `docs/openapi.yaml`.\n")
	return b.String()
}

func auth(op map[string]any) string {
	sec, ok := op["security"].([]any)
	if !ok || len(sec) == 0 {
		return "—"
	}
	var names []string
	optional := false
	for _, alt := range sec {
		m, _ := alt.(map[string]any)
		if len(m) == 0 {
			optional = true
		}
		for name := range m {
			switch name {
			case "session":
				names = append(names, "session")
			case "schedulerOIDC":
				names = append(names, "scheduler's OIDC token")
			default:
				names = append(names, name)
			}
		}
	}
	s := strings.Join(names, " or ")
	if optional {
		s += " (optional)"
	}
	return s
}

// TestEndpointTableIsCurrent: the table in docs/integrating.md (and in
// README.md, when it has the markers) is the one the document renders.
func TestEndpointTableIsCurrent(t *testing.T) {
	s := loadSpec(t)
	table := renderTable(s)
	for _, path := range []string{"../../docs/integrating.md", "../../README.md"} {
		raw, err := os.ReadFile(path)
		if err != nil {
			if os.IsNotExist(err) && path == "../../README.md" {
				continue
			}
			t.Fatal(err)
		}
		text := string(raw)
		i, j := strings.Index(text, tableBegin), strings.Index(text, tableEnd)
		if i < 0 || j < i {
			if path == "../../README.md" {
				continue // the README may link to docs/integrating.md instead
			}
			t.Fatalf("%s: no %q … %q markers", path, tableBegin, tableEnd)
		}
		want := text[:i+len(tableBegin)] + "\n" + table + text[j:]
		if want == text {
			continue
		}
		if *update {
			if err := os.WriteFile(path, []byte(want), 0o644); err != nil {
				t.Fatal(err)
			}
			t.Logf("rewrote the endpoint table in %s", path)
			continue
		}
		t.Errorf("%s: the endpoint table is stale; run go test ./internal/apidoc -update\nwant:\n%s", path, table)
	}
}
