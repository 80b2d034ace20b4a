package sandbox

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"

	"example.com/gmailoauth/internal/gmail"
)

type batchKey struct{}

// inBatch reports whether r is a call inside a batch request.
func inBatch(r *http.Request) bool { return r.Context().Value(batchKey{}) != nil }

// gmailBatch serves POST /batch/gmail/v1 as Google's batch endpoint does:
// a multipart/mixed body of at most 100 application/http calls, each run
// as if sent alone (authentication, scope, and the quota: a batch of n
// calls costs what the n calls cost), answered as a multipart/mixed body
// of application/http answers in the same order, each part's Content-ID
// "response-" + the call's. The outer request's Authorization applies to
// calls that carry none. The injected latency is waited once.
func (s *Sandbox) gmailBatch(w http.ResponseWriter, r *http.Request) {
	s.bumpStat(func(st *Stats) { st.GmailCalls[gmail.MethodBatch]++ })
	s.mu.Lock()
	latency := s.gmailFaults.Latency
	s.mu.Unlock()
	sleep(r, latency)
	body, err := io.ReadAll(io.LimitReader(r.Body, 8<<20))
	if err != nil {
		gmailBadRequest(w, "Failed to read the batch request")
		return
	}
	calls, err := gmail.ParseBatch(r.Header.Get("Content-Type"), body)
	if err != nil {
		gmailBadRequest(w, err.Error())
		return
	}
	var out bytes.Buffer
	var b [12]byte
	_, _ = rand.Read(b[:])
	boundary := "batch_" + hex.EncodeToString(b[:])
	ctx := context.WithValue(r.Context(), batchKey{}, true)
	for _, c := range calls {
		inner := c.Request.WithContext(ctx)
		inner.RequestURI = ""
		if i := strings.Index(inner.URL.Path, "/gmail/v1/"); i > 0 { // written with the mount prefix
			inner.URL.Path = inner.URL.Path[i:]
		}
		if inner.Header.Get("Authorization") == "" {
			inner.Header.Set("Authorization", r.Header.Get("Authorization"))
		}
		rec := httptest.NewRecorder()
		if strings.HasPrefix(inner.URL.Path, "/batch/") {
			gmailBadRequest(rec, "A batch cannot hold a batch")
		} else {
			s.mux.ServeHTTP(rec, inner)
		}
		res := rec.Result()
		fmt.Fprintf(&out, "--%s\r\nContent-Type: application/http\r\nContent-ID: <response-%s>\r\n\r\n", boundary, c.ContentID)
		fmt.Fprintf(&out, "HTTP/1.1 %d %s\r\n", res.StatusCode, http.StatusText(res.StatusCode))
		for _, k := range []string{"Content-Type", "Retry-After", "WWW-Authenticate"} {
			if v := res.Header.Get(k); v != "" {
				fmt.Fprintf(&out, "%s: %s\r\n", k, v)
			}
		}
		fmt.Fprintf(&out, "Content-Length: %d\r\n\r\n", rec.Body.Len())
		out.Write(rec.Body.Bytes())
		out.WriteString("\r\n")
	}
	fmt.Fprintf(&out, "--%s--\r\n", boundary)
	w.Header().Set("Content-Type", "multipart/mixed; boundary="+boundary)
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(out.Bytes())
}

// countingWriter counts the bytes of an answer's body.
type countingWriter struct {
	http.ResponseWriter
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.ResponseWriter.Write(p)
	c.n += int64(n)
	return n, err
}

// countBytes counts the body of Gmail answers (the batch's, not its
// parts again) in Stats.GmailBytes.
func (s *Sandbox) countBytes(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if inBatch(r) {
			h.ServeHTTP(w, r)
			return
		}
		cw := &countingWriter{ResponseWriter: w}
		h.ServeHTTP(cw, r)
		s.bumpStat(func(st *Stats) { st.GmailBytes += cw.n })
	})
}
