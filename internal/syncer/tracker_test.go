package syncer

import "testing"

func TestTracker(t *testing.T) {
	tr := newTracker("a")
	for _, id := range []string{"b", "c", "d", "e"} {
		tr.start(id)
	}
	tr.finish("c", true)
	if p := tr.prefix(); p != "a" {
		t.Fatalf("prefix %q", p)
	}
	tr.finish("b", true)
	tr.finish("e", true)
	if p := tr.prefix(); p != "c" {
		t.Fatalf("prefix %q, want c", p)
	}
	tr.finish("d", false)
	if p := tr.prefix(); p != "c" || tr.allDone() {
		t.Fatalf("prefix %q allDone %v", p, tr.allDone())
	}
}
