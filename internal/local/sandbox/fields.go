package sandbox

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
)

// selection is a parsed `fields` parameter (Google's partial response): the
// keys to keep, each with the selection below it (nil: all of it).
type selection map[string]selection

// parseFields parses Google's fields syntax: a comma-separated list of
// paths (a/b/c), each optionally followed by a parenthesised list that
// selects inside it (messages(id,threadId)).
func parseFields(s string) (selection, error) {
	p := &fieldsParser{s: s}
	sel, err := p.list()
	if err == nil && p.i != len(p.s) {
		err = errors.New("unexpected " + string(p.s[p.i]))
	}
	return sel, err
}

type fieldsParser struct {
	s string
	i int
}

func (p *fieldsParser) list() (selection, error) {
	out := selection{}
	for {
		path := p.name()
		if path == "" {
			return nil, errors.New("empty field name")
		}
		var sub selection
		if p.i < len(p.s) && p.s[p.i] == '(' {
			p.i++
			var err error
			if sub, err = p.list(); err != nil {
				return nil, err
			}
			if p.i >= len(p.s) || p.s[p.i] != ')' {
				return nil, errors.New("missing )")
			}
			p.i++
		}
		out.add(strings.Split(path, "/"), sub)
		if p.i >= len(p.s) || p.s[p.i] != ',' {
			return out, nil
		}
		p.i++
	}
}

func (p *fieldsParser) name() string {
	start := p.i
	for p.i < len(p.s) && !strings.ContainsRune(",()", rune(p.s[p.i])) {
		p.i++
	}
	return strings.TrimSpace(p.s[start:p.i])
}

// add selects path, with sub below its last element.
func (s selection) add(path []string, sub selection) {
	cur := s
	for i, k := range path {
		next, seen := cur[k]
		if i == len(path)-1 {
			if !seen || next != nil {
				if sub == nil {
					cur[k] = nil // the whole value wins
				} else {
					if next == nil {
						next = selection{}
					}
					for kk, vv := range sub {
						next[kk] = vv
					}
					cur[k] = next
				}
			}
			return
		}
		if seen && next == nil {
			return // already whole
		}
		if next == nil {
			next = selection{}
			cur[k] = next
		}
		cur = next
	}
}

// apply keeps what s selects of v (a decoded JSON value).
func (s selection) apply(v any) any {
	if s == nil {
		return v
	}
	switch t := v.(type) {
	case map[string]any:
		out := map[string]any{}
		for k, sub := range s {
			if x, ok := t[k]; ok {
				out[k] = sub.apply(x)
			}
		}
		return out
	case []any:
		out := make([]any, len(t))
		for i, x := range t {
			out[i] = s.apply(x)
		}
		return out
	}
	return v
}

// partialWriter holds a JSON answer back so that only the selected fields
// are written.
type partialWriter struct {
	http.ResponseWriter
	status int
	buf    bytes.Buffer
}

func (p *partialWriter) WriteHeader(code int) { p.status = code }
func (p *partialWriter) Write(b []byte) (int, error) {
	if p.status == 0 {
		p.status = http.StatusOK
	}
	return p.buf.Write(b)
}

// withFields serves h with Google's partial response: when the request has
// a fields parameter, a 200 answer keeps only the selected fields; a
// fields parameter that does not parse is answered 400, as Google does.
func withFields(w http.ResponseWriter, r *http.Request, h func(http.ResponseWriter)) {
	f := r.URL.Query().Get("fields")
	if f == "" {
		h(w)
		return
	}
	sel, err := parseFields(f)
	if err != nil {
		gmailBadRequest(w, "Invalid field selection "+f)
		return
	}
	pw := &partialWriter{ResponseWriter: w}
	h(pw)
	var v any
	if pw.status != http.StatusOK || json.Unmarshal(pw.buf.Bytes(), &v) != nil {
		w.WriteHeader(max(pw.status, http.StatusOK))
		_, _ = w.Write(pw.buf.Bytes())
		return
	}
	writeJSON(w, http.StatusOK, sel.apply(v))
}
