package apidoc_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"go.yaml.in/yaml/v3"

	"example.com/gmailoauth/internal/apperr"
)

const (
	specPath = "../../docs/openapi.yaml"
	docURL   = "file:///openapi.json"
)

var methods = []string{"get", "post", "put", "patch", "delete", "options", "head", "trace"}

// spec is docs/openapi.yaml, parsed, with its schemas compiled on demand.
type spec struct {
	doc      map[string]any
	compiler *jsonschema.Compiler
	mu       sync.Mutex
	compiled map[string]*jsonschema.Schema
}

var (
	loadOnce   sync.Once
	loaded     *spec
	loadErr    error
	pointerEsc = strings.NewReplacer("~", "~0", "/", "~1")
)

func loadSpec(t testing.TB) *spec {
	t.Helper()
	loadOnce.Do(func() { loaded, loadErr = parseSpec(specPath) })
	if loadErr != nil {
		t.Fatalf("%s: %v", specPath, loadErr)
	}
	return loaded
}

func parseSpec(path string) (*spec, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var y any
	if err := yaml.Unmarshal(raw, &y); err != nil {
		return nil, fmt.Errorf("YAML: %w", err)
	}
	// Through JSON, so the document is exactly what a JSON tool would see
	// (string keys only; numbers as json.Number).
	js, err := json.Marshal(y)
	if err != nil {
		return nil, fmt.Errorf("not JSON-compatible (a non-string key?): %w", err)
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(js))
	if err != nil {
		return nil, err
	}
	m, ok := doc.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("the document is not an object")
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020) // OpenAPI 3.1's schema dialect is 2020-12 based
	c.AssertFormat()
	if err := c.AddResource(docURL, doc); err != nil {
		return nil, err
	}
	return &spec{doc: m, compiler: c, compiled: map[string]*jsonschema.Schema{}}, nil
}

// at returns the node at a JSON pointer ("/paths/~1authorize/get").
func (s *spec) at(ptr string) (any, bool) {
	var cur any = s.doc
	if ptr == "" {
		return cur, true
	}
	for _, tok := range strings.Split(strings.TrimPrefix(ptr, "/"), "/") {
		tok = strings.NewReplacer("~1", "/", "~0", "~").Replace(tok)
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		if cur, ok = m[tok]; !ok {
			return nil, false
		}
	}
	return cur, true
}

// deref follows $refs (document-local) from the response or header object
// at ptr, returning the final object and its pointer. (Schemas are left to
// the JSON Schema compiler.)
func (s *spec) deref(ptr string) (map[string]any, string, error) {
	for range 10 {
		n, ok := s.at(ptr)
		if !ok {
			return nil, ptr, fmt.Errorf("nothing at #%s", ptr)
		}
		m, ok := n.(map[string]any)
		if !ok {
			return nil, ptr, fmt.Errorf("#%s is not an object", ptr)
		}
		ref, ok := m["$ref"].(string)
		if !ok {
			return m, ptr, nil
		}
		if !strings.HasPrefix(ref, "#/") {
			return nil, ptr, fmt.Errorf("#%s: only document-local $ref are used, got %q", ptr, ref)
		}
		ptr = ref[1:]
	}
	return nil, ptr, fmt.Errorf("#%s: $ref loop", ptr)
}

// schema compiles the JSON schema at ptr.
func (s *spec) schema(ptr string) (*jsonschema.Schema, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if sch, ok := s.compiled[ptr]; ok {
		return sch, nil
	}
	sch, err := s.compiler.Compile(docURL + "#" + ptr)
	if err != nil {
		return nil, err
	}
	s.compiled[ptr] = sch
	return sch, nil
}

// operation is one documented method of one path.
type operation struct {
	Method, Path string // "GET", "/authorize"
	ptr          string
}

func (o operation) String() string { return o.Method + " " + o.Path }

func (s *spec) operations() []operation {
	var ops []operation
	paths, _ := s.doc["paths"].(map[string]any)
	for p, item := range paths {
		im, _ := item.(map[string]any)
		for _, m := range methods {
			if _, ok := im[m]; ok {
				ops = append(ops, operation{Method: strings.ToUpper(m), Path: p, ptr: "/paths/" + pointerEsc.Replace(p) + "/" + m})
			}
		}
	}
	sort.Slice(ops, func(i, j int) bool {
		if ops[i].Path != ops[j].Path {
			return ops[i].Path < ops[j].Path
		}
		return slices.Index(methods, strings.ToLower(ops[i].Method)) < slices.Index(methods, strings.ToLower(ops[j].Method))
	})
	return ops
}

// response returns the documented response of op for status (resolved) and
// its pointer. For a method the path does not list it is
// components.responses.MethodNotAllowed.
func (s *spec) response(method, path string, status int) (map[string]any, string, error) {
	item, ok := s.at("/paths/" + pointerEsc.Replace(path))
	if !ok {
		return nil, "", fmt.Errorf("path %s is not documented", path)
	}
	ptr := "/paths/" + pointerEsc.Replace(path) + "/" + strings.ToLower(method) + "/responses/" + strconv.Itoa(status)
	if _, listed := item.(map[string]any)[strings.ToLower(method)]; !listed {
		if status != http.StatusMethodNotAllowed {
			return nil, "", fmt.Errorf("%s %s is not documented (want 405)", method, path)
		}
		ptr = "/components/responses/MethodNotAllowed"
	}
	if _, ok := s.at(ptr); !ok {
		return nil, "", fmt.Errorf("%s %s: status %d is not documented", method, path, status)
	}
	m, p, err := s.deref(ptr)
	return m, p, err
}

// codes returns the error codes a response's schema names: the const and
// enum values of error.code, and whether it also allows codes passed on
// from Google (x-provider-codes).
func (s *spec) codes(respPtr string) (codes []string, provider bool) {
	n, ok := s.at(respPtr + "/content/application~1json/schema/properties/error/properties/code")
	if !ok {
		return nil, false
	}
	var walk func(any)
	walk = func(n any) {
		m, _ := n.(map[string]any)
		if c, ok := m["const"].(string); ok {
			codes = append(codes, c)
		}
		if e, ok := m["enum"].([]any); ok {
			for _, v := range e {
				codes = append(codes, v.(string))
			}
		}
		if m["x-provider-codes"] == true {
			provider = true
		}
		if a, ok := m["anyOf"].([]any); ok {
			for _, v := range a {
				walk(v)
			}
		}
	}
	walk(n)
	return codes, provider
}

// statuses returns the documented statuses of an operation, sorted.
func (s *spec) statuses(op operation) []int {
	r, _ := s.at(op.ptr + "/responses")
	var out []int
	for k := range r.(map[string]any) {
		n, err := strconv.Atoi(k)
		if err == nil {
			out = append(out, n)
		}
	}
	sort.Ints(out)
	return out
}

// TestSpecIsValidOpenAPI31 checks the document's shape: OpenAPI 3.1, unique
// operationIds, three-digit statuses with descriptions, every $ref resolves
// and every schema compiles (JSON Schema 2020-12).
func TestSpecIsValidOpenAPI31(t *testing.T) {
	s := loadSpec(t)
	if v, _ := s.doc["openapi"].(string); !strings.HasPrefix(v, "3.1.") {
		t.Errorf("openapi = %q, want 3.1.x", v)
	}
	info, _ := s.doc["info"].(map[string]any)
	if info["title"] == nil || info["version"] == nil {
		t.Errorf("info needs title and version")
	}
	var walk func(ptr string, n any)
	walk = func(ptr string, n any) {
		switch v := n.(type) {
		case map[string]any:
			if ref, ok := v["$ref"].(string); ok {
				if !strings.HasPrefix(ref, "#/") {
					t.Errorf("#%s: $ref %q is not document-local", ptr, ref)
				} else if _, ok := s.at(ref[1:]); !ok {
					t.Errorf("#%s: $ref %q does not resolve", ptr, ref)
				}
			}
			for k, c := range v {
				walk(ptr+"/"+pointerEsc.Replace(k), c)
			}
		case []any:
			for i, c := range v {
				walk(ptr+"/"+strconv.Itoa(i), c)
			}
		}
	}
	walk("", s.doc)

	ids := map[string]bool{}
	ops := s.operations()
	if len(ops) == 0 {
		t.Fatal("no operations")
	}
	statusRE := regexp.MustCompile(`^[1-5][0-9][0-9]$`)
	for _, op := range ops {
		o, _ := s.at(op.ptr)
		om := o.(map[string]any)
		id, _ := om["operationId"].(string)
		if id == "" || ids[id] {
			t.Errorf("%s: operationId %q missing or not unique", op, id)
		}
		ids[id] = true
		resps, _ := om["responses"].(map[string]any)
		if len(resps) == 0 {
			t.Errorf("%s: no responses", op)
		}
		for k := range resps {
			if !statusRE.MatchString(k) {
				t.Errorf("%s: response key %q is not a status code", op, k)
				continue
			}
			n, _ := strconv.Atoi(k)
			r, p, err := s.response(op.Method, op.Path, n)
			if err != nil {
				t.Errorf("%s %s: %v", op, k, err)
				continue
			}
			if d, _ := r["description"].(string); d == "" {
				t.Errorf("%s %s: no description", op, k)
			}
			if _, ok := s.at(p + "/content/application~1json/schema"); ok {
				if _, err := s.schema(p + "/content/application~1json/schema"); err != nil {
					t.Errorf("%s %s: schema does not compile: %v", op, k, err)
				}
			}
		}
	}
	// Every component schema compiles too.
	schemas, _ := s.at("/components/schemas")
	for name := range schemas.(map[string]any) {
		if _, err := s.schema("/components/schemas/" + name); err != nil {
			t.Errorf("components.schemas.%s: %v", name, err)
		}
	}
}

// sourceCodes maps every code the functions can answer (the constants of
// package apperr) to where it is declared.
func sourceCodes(t *testing.T) map[string][]string {
	t.Helper()
	found := map[string][]string{}
	for _, c := range apperr.Codes() {
		found[string(c)] = []string{"internal/apperr"}
	}
	return found
}

// documentedCodes maps every code the document names to where.
func documentedCodes(s *spec) map[string][]string {
	out := map[string][]string{}
	add := func(code, where string) {
		if !slices.Contains(out[code], where) {
			out[code] = append(out[code], where)
		}
	}
	for _, op := range s.operations() {
		for _, st := range s.statuses(op) {
			_, p, err := s.response(op.Method, op.Path, st)
			if err != nil {
				continue
			}
			codes, _ := s.codes(p)
			for _, c := range codes {
				add(c, fmt.Sprintf("%s %d", op, st))
			}
		}
	}
	codes, _ := s.codes("/components/responses/MethodNotAllowed")
	for _, c := range codes {
		add(c, "any path, other methods")
	}
	return out
}

// TestEveryErrorCodeIsDocumented: the codes of package apperr and the
// codes the document names are the same set.
func TestEveryErrorCodeIsDocumented(t *testing.T) {
	s := loadSpec(t)
	src := sourceCodes(t)
	doc := documentedCodes(s)
	for c, where := range src {
		if _, ok := doc[c]; !ok {
			t.Errorf("code %q (in %s) is not documented in %s", c, strings.Join(where, ", "), specPath)
		}
	}
	for c, where := range doc {
		if _, ok := src[c]; !ok {
			t.Errorf("code %q is documented (%s) but is not a code of internal/apperr", c, strings.Join(where, ", "))
		}
	}
}

// validate checks one real answer against the document: the status is
// documented for the operation, required headers are there and well-formed,
// a JSON body matches the schema. It returns the error code ("" for none).
func (s *spec) validate(method, path string, status int, h http.Header, body []byte) (string, error) {
	resp, p, err := s.response(method, path, status)
	if err != nil {
		return "", err
	}
	var problems []string
	if h.Get("Cache-Control") != "no-store" || h.Get("X-Content-Type-Options") != "nosniff" {
		problems = append(problems, "missing the security headers every answer carries")
	}
	if hs, ok := resp["headers"].(map[string]any); ok {
		for name := range hs {
			hm, hp, err := s.deref(p + "/headers/" + pointerEsc.Replace(name))
			if err != nil {
				problems = append(problems, err.Error())
				continue
			}
			v := h.Get(name)
			if v == "" {
				if hm["required"] == true {
					problems = append(problems, "missing header "+name)
				}
				continue
			}
			sch, err := s.schema(hp + "/schema")
			if err != nil {
				problems = append(problems, err.Error())
				continue
			}
			var inst any = v
			if typ, _ := s.at(hp + "/schema/type"); typ == "integer" {
				n, err := strconv.Atoi(v)
				if err != nil {
					problems = append(problems, fmt.Sprintf("header %s = %q, want an integer", name, v))
					continue
				}
				inst = json.Number(strconv.Itoa(n))
			}
			if err := sch.Validate(inst); err != nil {
				problems = append(problems, fmt.Sprintf("header %s = %q: %v", name, v, err))
			}
		}
	}
	code := ""
	if _, ok := s.at(p + "/content/application~1json"); ok {
		if ct := h.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
			problems = append(problems, fmt.Sprintf("Content-Type %q, want application/json", ct))
		}
		inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(body))
		if err != nil {
			problems = append(problems, fmt.Sprintf("body is not JSON: %v: %.200s", err, body))
		} else {
			sch, err := s.schema(p + "/content/application~1json/schema")
			if err != nil {
				problems = append(problems, err.Error())
			} else if err := sch.Validate(inst); err != nil {
				problems = append(problems, fmt.Sprintf("body %.300s does not match the schema: %v", body, err))
			}
			if m, ok := inst.(map[string]any); ok {
				if e, ok := m["error"].(map[string]any); ok {
					code, _ = e["code"].(string)
				}
			}
		}
	} else if status == http.StatusNoContent && len(body) > 0 {
		problems = append(problems, "204 with a body")
	}
	if len(problems) > 0 {
		return code, fmt.Errorf("%s %s → %d: %s", method, path, status, strings.Join(problems, "; "))
	}
	return code, nil
}

// fragmentCode validates a callback redirect's fragment: the session fields
// on success, or a documented callback error code.
func (s *spec) fragmentCode(loc *url.URL) (string, error) {
	f, err := url.ParseQuery(loc.EscapedFragment())
	if err != nil {
		return "", fmt.Errorf("fragment %q: %w", loc.Fragment, err)
	}
	if f.Get("session") != "" {
		if f.Get("session_expires_at") == "" {
			return "", fmt.Errorf("fragment has a session but no session_expires_at")
		}
		return "", nil
	}
	code := f.Get("error")
	if code == "" || f.Get("error_description") == "" {
		return "", fmt.Errorf("fragment %q: want session or error + error_description", loc.Fragment)
	}
	for _, st := range s.statuses(operation{ptr: "/paths/~1callback/get"}) {
		_, p, err := s.response("GET", "/callback", st)
		if err != nil {
			continue
		}
		codes, provider := s.codes(p)
		if slices.Contains(codes, code) || provider && regexp.MustCompile(`^[a-z_]{1,64}$`).MatchString(code) {
			return code, nil
		}
	}
	return code, fmt.Errorf("fragment error %q is not a documented callback code", code)
}
