package apidoc_test

import (
	"fmt"
	"os"
	"sort"
	"strings"
	"testing"

	"example.com/gmailoauth/internal/gmail"
)

const (
	costsBegin = "<!-- gmail-costs:begin (generated from internal/gmail/costs.go by go test ./internal/apidoc -update) -->"
	costsEnd   = "<!-- gmail-costs:end -->"
)

// renderCosts renders gmail.Costs as the README's table.
func renderCosts() string {
	names := make([]string, 0, len(gmail.Costs))
	for n := range gmail.Costs {
		names = append(names, n)
	}
	sort.Strings(names)
	var b strings.Builder
	b.WriteString("| Gmail method | quota units | with a whole message (`format` full, raw, html) | source |\n|---|---:|---:|---|\n")
	for _, n := range names {
		p := gmail.Costs[n]
		full := "—"
		if p.FullUnits != 0 {
			full = fmt.Sprint(p.FullUnits)
		}
		fmt.Fprintf(&b, "| `%s` | %d | %s | %s |\n", n, p.Units, full, p.Source)
	}
	fmt.Fprintf(&b, "| any other call | %d | — | a guess, for calls the code does not make |\n", gmail.OtherCost)
	b.WriteString("| a batch of n calls | the n calls' sum | | Google counts a batch call by call |\n")
	return b.String()
}

// TestCostTableIsCurrent: README.md's table of Gmail prices is gmail.Costs,
// the table the functions and the sandbox charge.
func TestCostTableIsCurrent(t *testing.T) {
	const path = "../../README.md"
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	text := string(raw)
	i, j := strings.Index(text, costsBegin), strings.Index(text, costsEnd)
	if i < 0 || j < i {
		t.Fatalf("%s: no %q … %q markers", path, costsBegin, costsEnd)
	}
	table := renderCosts()
	want := text[:i+len(costsBegin)] + "\n" + table + text[j:]
	if want == text {
		return
	}
	if *update {
		if err := os.WriteFile(path, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("rewrote the cost table in %s", path)
		return
	}
	t.Errorf("%s: the cost table is stale; run go test ./internal/apidoc -update\nwant:\n%s", path, table)
}
