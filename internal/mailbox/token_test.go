package mailbox

import (
	"encoding/base64"
	"testing"

	"github.com/google/go-cmp/cmp"

	"example.com/gmailoauth/internal/apperr"
	"example.com/gmailoauth/internal/store"
)

var (
	key1 = []byte("0123456789abcdef0123456789abcdef")
	key2 = []byte("fedcba9876543210fedcba9876543210")
)

func TestPageTokenRoundTrip(t *testing.T) {
	req := ListRequest{LabelIDs: []string{"UNREAD", "INBOX"}, IncludeSpamTrash: true}
	for _, tok := range []pageToken{
		{kind: kindMirror, cursor: store.MirrorCursor{InternalDate: 1_773_497_366_535, ID: "18f3a5bfffe71e44"}},
		{kind: kindGmail, gmailToken: "09876543210987654321", seam: 1_770_000_000},
		{kind: kindGmail, seam: 1_770_000_000},
		{kind: kindGmail, gmailToken: "c2J4OjEw"},
	} {
		s := sealToken([][]byte{key1}, "u1", req, tok)
		if len(s) > MaxPageTokenLen {
			t.Errorf("token of %d bytes, over MaxPageTokenLen", len(s))
		}
		// The labels are a set: another order or a repeat is the same listing.
		same := ListRequest{LabelIDs: []string{"INBOX", "UNREAD", "INBOX"}, IncludeSpamTrash: true, MaxResults: 7, Format: FormatMetadata}
		got, err := openToken([][]byte{key2, key1}, "u1", same, s)
		if err != nil {
			t.Fatalf("openToken(%+v): %v", tok, err)
		}
		if diff := cmp.Diff(tok, *got, cmp.AllowUnexported(pageToken{})); diff != "" {
			t.Errorf("round trip (-sealed +opened):\n%s", diff)
		}
		for name, other := range map[string]struct {
			user string
			req  ListRequest
			keys [][]byte
		}{
			"another user":         {"u2", req, [][]byte{key1}},
			"another label set":    {"u1", ListRequest{LabelIDs: []string{"INBOX"}, IncludeSpamTrash: true}, [][]byte{key1}},
			"no spam and trash":    {"u1", ListRequest{LabelIDs: req.LabelIDs}, [][]byte{key1}},
			"a query":              {"u1", ListRequest{LabelIDs: req.LabelIDs, IncludeSpamTrash: true, Q: "x"}, [][]byte{key1}},
			"a key not in the set": {"u1", req, [][]byte{key2}},
		} {
			if _, err := openToken(other.keys, other.user, other.req, s); !apperr.Is(err, apperr.InvalidPageToken) {
				t.Errorf("%s: %v, want invalid_page_token", name, err)
			}
		}
		raw, _ := base64.RawURLEncoding.DecodeString(s)
		for i := range raw {
			b := append([]byte(nil), raw...)
			b[i] ^= 0x20
			if _, err := openToken([][]byte{key1}, "u1", req, base64.RawURLEncoding.EncodeToString(b)); err == nil {
				t.Errorf("byte %d altered: accepted", i)
			}
		}
	}
}

// FuzzOpenPageToken: no input makes openToken panic, and whatever it
// accepts seals back to the same token (it never accepts a token it did not
// make).
func FuzzOpenPageToken(f *testing.F) {
	req := ListRequest{LabelIDs: []string{"INBOX"}}
	f.Add(sealToken([][]byte{key1}, "u1", req, pageToken{kind: kindMirror, cursor: store.MirrorCursor{InternalDate: 5, ID: "a"}}))
	f.Add(sealToken([][]byte{key1}, "u1", req, pageToken{kind: kindGmail, gmailToken: "x", seam: 9}))
	f.Add("")
	f.Add("AQ")
	f.Fuzz(func(t *testing.T, s string) {
		tok, err := openToken([][]byte{key1}, "u1", req, s)
		if err != nil {
			if !apperr.Is(err, apperr.InvalidPageToken) {
				t.Fatalf("error %v: want invalid_page_token", err)
			}
			return
		}
		if again := sealToken([][]byte{key1}, "u1", req, *tok); again != s {
			t.Fatalf("accepted %q, which seals back to %q", s, again)
		}
	})
}

func TestSeamOf(t *testing.T) {
	for _, tc := range []struct{ h, want int64 }{
		{1_770_000_000_000, 1_770_000_000},
		{1_770_000_000_001, 1_770_000_001},
		{1_770_000_000_999, 1_770_000_001},
		{store.HorizonAll, 0},
		{1, 1},
	} {
		if got := seamOf(tc.h); got != tc.want {
			t.Errorf("seamOf(%d) = %d, want %d", tc.h, got, tc.want)
		}
	}
}

func TestSplitLabels(t *testing.T) {
	for _, tc := range []struct {
		in   []string
		want string
		rest []string
	}{
		{nil, "", nil},
		{[]string{"INBOX"}, "INBOX", []string{}},
		{[]string{"INBOX", "UNREAD"}, "UNREAD", []string{"INBOX"}},
		{[]string{"INBOX", "Label_7", "UNREAD"}, "Label_7", []string{"INBOX", "UNREAD"}},
		{[]string{"CATEGORY_SOCIAL", "INBOX", "INBOX"}, "CATEGORY_SOCIAL", []string{"INBOX"}},
		{[]string{"STARRED", "SENT"}, "STARRED", []string{"SENT"}},
	} {
		got, rest := splitLabels(tc.in)
		if got != tc.want || !cmp.Equal(rest, tc.rest, cmp.Comparer(func(a, b []string) bool { return len(a) == len(b) && (len(a) == 0 || cmp.Equal(a, b)) })) {
			t.Errorf("splitLabels(%v) = %q, %v; want %q, %v", tc.in, got, rest, tc.want, tc.rest)
		}
	}
}
