package main

import (
	"bytes"
	"strings"
	"testing"
)

// TestRotateRefusesABadKeyset: the message says "keyset:" once and what is
// wrong, and nothing reaches stdout (which is piped into Secret Manager).
func TestRotateRefusesABadKeyset(t *testing.T) {
	var stdout, stderr bytes.Buffer
	code := run([]string{"-rotate"}, strings.NewReader(`{"not":"a keyset"}`), &stdout, &stderr)
	if code != 1 {
		t.Errorf("exit code %d, want 1", code)
	}
	if msg := stderr.String(); strings.Count(msg, "keyset:") != 1 || !strings.Contains(msg, "not valid keyset JSON") {
		t.Errorf("stderr %q: want one \"keyset:\" and the reason", msg)
	}
	if stdout.Len() != 0 {
		t.Errorf("stdout %q: want nothing on failure", stdout.String())
	}
}

// TestGenerateThenRotate: a new keyset rotates into one that keeps the old
// keys.
func TestGenerateThenRotate(t *testing.T) {
	var first, second, stderr bytes.Buffer
	if code := run([]string{"-id", "a"}, nil, &first, &stderr); code != 0 {
		t.Fatalf("generate: exit %d: %s", code, stderr.String())
	}
	if code := run([]string{"-rotate", "-id", "b"}, &first, &second, &stderr); code != 0 {
		t.Fatalf("rotate: exit %d: %s", code, stderr.String())
	}
	for _, id := range []string{`"enc-a"`, `"enc-b"`, `"sess-a"`, `"sess-b"`} {
		if !strings.Contains(second.String(), id) {
			t.Errorf("rotated keyset %s: want key id %s", second.String(), id)
		}
	}
}
