package secrets_test

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"example.com/gmailoauth/internal/secrets"
)

// writeFile writes content to name in dir and returns its path.
func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatalf("WriteFile: %v", err)
	}
	return p
}

func TestFileSourceReadsCachesAndRefreshes(t *testing.T) {
	dir := t.TempDir()
	p := writeFile(t, dir, "client.json", payload("v1"))
	var src secrets.FileSource // the zero value is ready to use

	steps := []struct {
		name   string
		before func()
		want   string
	}{
		{name: "first read", want: payload("v1")},
		{name: "cached after the file changes", before: func() { writeFile(t, dir, "client.json", payload("v2")) }, want: payload("v1")},
		{name: "re-read after Refresh", before: func() { src.Refresh(p) }, want: payload("v2")},
		{name: "cached even after the file is removed", before: func() { os.Remove(p) }, want: payload("v2")},
	}
	for _, st := range steps {
		if st.before != nil {
			st.before()
		}
		got, err := src.Secret(t.Context(), p)
		if err != nil {
			t.Fatalf("%s: Secret: %v", st.name, err)
		}
		if diff := cmp.Diff(st.want, string(got)); diff != "" {
			t.Errorf("%s: payload mismatch (-want +got):\n%s", st.name, diff)
		}
	}
}

func TestFileSourceErrors(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name     string
		ref      string
		wantKind secrets.Kind
		wantMsg  string
	}{
		{name: "missing file", ref: filepath.Join(dir, "nope.json"), wantKind: secrets.NotFound, wantMsg: "not found (no such file)"},
		{name: "empty path", ref: "", wantKind: secrets.Invalid, wantMsg: `secret "": invalid: the file path is empty`},
		{name: "empty file", ref: writeFile(t, dir, "empty.json", " \n"), wantKind: secrets.Invalid, wantMsg: "invalid: the payload is empty"},
		{name: "directory", ref: dir, wantKind: secrets.Other, wantMsg: "could not be read"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := secrets.NewFileSource()
			got, err := src.Secret(t.Context(), tt.ref)
			if err == nil {
				t.Fatalf("Secret(%q) = %q, want error", tt.ref, got)
			}
			se := asError(t, err)
			if se.Kind != tt.wantKind || se.Ref != tt.ref {
				t.Errorf("got Kind %v Ref %q, want Kind %v Ref %q (error: %v)", se.Kind, se.Ref, tt.wantKind, tt.ref, err)
			}
			if !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("error %q does not contain %q", err, tt.wantMsg)
			}
		})
	}
}

func TestFileSourcePermissionDenied(t *testing.T) {
	t.Run("mapping", func(t *testing.T) {
		err := secrets.FileError("/run/secrets/client.json", &fs.PathError{Op: "open", Path: "/run/secrets/client.json", Err: fs.ErrPermission})
		if err.Kind != secrets.PermissionDenied {
			t.Errorf("Kind = %v, want %v", err.Kind, secrets.PermissionDenied)
		}
		if want := "permission denied (the process cannot read this file)"; !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not contain %q", err, want)
		}
		if !errors.Is(err, fs.ErrPermission) {
			t.Errorf("errors.Is(%v, fs.ErrPermission) = false, want true", err)
		}
	})
	t.Run("real file", func(t *testing.T) {
		if os.Geteuid() == 0 {
			t.Skip("root reads files regardless of their mode")
		}
		p := writeFile(t, t.TempDir(), "client.json", payload("v1"))
		if err := os.Chmod(p, 0); err != nil {
			t.Fatalf("Chmod: %v", err)
		}
		_, err := secrets.NewFileSource().Secret(t.Context(), p)
		if se := asError(t, err); se.Kind != secrets.PermissionDenied {
			t.Errorf("Kind = %v, want %v (error: %v)", se.Kind, secrets.PermissionDenied, err)
		}
	})
}
