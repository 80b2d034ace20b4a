package mailbox_test

import (
	"net/url"
	"strings"
	"testing"
	"unicode/utf8"

	"example.com/gmailoauth/internal/apperr"
	"example.com/gmailoauth/internal/mailbox"
	"github.com/google/go-cmp/cmp"
)

// defaults is the ListRequest of an empty query.
func defaults() mailbox.ListRequest {
	return mailbox.ListRequest{MaxResults: mailbox.DefaultMaxResults, Format: mailbox.FormatIDs, Source: mailbox.SourceAuto}
}

func TestParseListRequest(t *testing.T) {
	labels21 := strings.Repeat("label_ids=INBOX&", 21)
	tests := []struct {
		name     string
		query    string
		want     mailbox.ListRequest // compared when wantErrs is nil
		wantErrs []string            // substrings of the 400 message
	}{
		{"defaults", "", defaults(), nil},
		{"everything", "q=from%3Aa%40b.c+is%3Aunread&label_ids=INBOX&label_ids=Label_12&max_results=500&page_token=09876543210&include_spam_trash=true&format=metadata&source=gmail",
			mailbox.ListRequest{Q: "from:a@b.c is:unread", LabelIDs: []string{"INBOX", "Label_12"}, MaxResults: 500, PageToken: "09876543210", IncludeSpamTrash: true, Format: "metadata", Source: "gmail"}, nil},
		{"source mirror", "source=mirror", func() mailbox.ListRequest { r := defaults(); r.Source = mailbox.SourceMirror; return r }(), nil},
		{"source auto", "source=auto", defaults(), nil},
		{"source unknown", "source=cache", mailbox.ListRequest{}, []string{"source must be auto, mirror or gmail"}},
		{"source upper", "source=MIRROR", mailbox.ListRequest{}, []string{"source must be auto, mirror or gmail"}},
		{"source repeated", "source=auto&source=gmail", mailbox.ListRequest{}, []string{"source may be given once"}},
		{"source mirror with q", "source=mirror&q=is%3Aunread", mailbox.ListRequest{}, []string{"q is answered by Gmail only"}},
		{"max_results 1", "max_results=1", func() mailbox.ListRequest { r := defaults(); r.MaxResults = 1; return r }(), nil},
		{"max_results 0", "max_results=0", mailbox.ListRequest{}, []string{"max_results must be a whole number from 1 to 500"}},
		{"max_results 501", "max_results=501", mailbox.ListRequest{}, []string{"max_results must be"}},
		{"max_results -1", "max_results=-1", mailbox.ListRequest{}, []string{"max_results must be"}},
		{"max_results abc", "max_results=abc", mailbox.ListRequest{}, []string{"max_results must be"}},
		{"max_results huge", "max_results=99999999999999999999", mailbox.ListRequest{}, []string{"max_results must be"}},
		{"max_results empty", "max_results=", mailbox.ListRequest{}, []string{"max_results must be"}},
		{"max_results repeated", "max_results=10&max_results=20", mailbox.ListRequest{}, []string{"max_results may be given once"}},
		{"q repeated", "q=a&q=b", mailbox.ListRequest{}, []string{"q may be given once"}},
		{"format repeated", "format=ids&format=ids", mailbox.ListRequest{}, []string{"format may be given once"}},
		{"unknown param", "maxResults=10", mailbox.ListRequest{}, []string{`unknown parameter "maxResults"`}},
		{"unknown param truncated", "x" + strings.Repeat("y", 100) + "=1", mailbox.ListRequest{}, []string{`unknown parameter "x` + strings.Repeat("y", 39) + `"`}},
		{"label charset", "label_ids=INBOX&label_ids=a%2Fb", mailbox.ListRequest{}, []string{"label_ids must be label ids"}},
		{"label space", "label_ids=my+label", mailbox.ListRequest{}, []string{"label_ids must be label ids"}},
		{"label empty", "label_ids=", mailbox.ListRequest{}, []string{"label_ids must be label ids"}},
		{"label too long", "label_ids=" + strings.Repeat("L", 65), mailbox.ListRequest{}, []string{"label_ids must be label ids"}},
		{"label 64", "label_ids=" + strings.Repeat("L", 64), mailbox.ListRequest{LabelIDs: []string{strings.Repeat("L", 64)}, MaxResults: 100, Format: "ids", Source: "auto"}, nil},
		{"label unicode", "label_ids=%C3%A9t%C3%A9", mailbox.ListRequest{}, []string{"label_ids must be label ids"}},
		{"20 labels", strings.Repeat("label_ids=INBOX&", 20), mailbox.ListRequest{LabelIDs: strings.Split(strings.Repeat("INBOX,", 19)+"INBOX", ","), MaxResults: 100, Format: "ids", Source: "auto"}, nil},
		{"21 labels", labels21, mailbox.ListRequest{}, []string{"at most 20 label_ids"}},
		{"page_token empty", "page_token=", mailbox.ListRequest{}, []string{"page_token is malformed"}},
		{"page_token space", "page_token=a+b", mailbox.ListRequest{}, []string{"page_token is malformed"}},
		{"page_token control", "page_token=a%00b", mailbox.ListRequest{}, []string{"page_token is malformed"}},
		{"page_token non-ascii", "page_token=%C3%A9", mailbox.ListRequest{}, []string{"page_token is malformed"}},
		{"page_token too long", "page_token=" + strings.Repeat("t", 513), mailbox.ListRequest{}, []string{"page_token is malformed"}},
		{"page_token 512", "page_token=" + strings.Repeat("t", 512), mailbox.ListRequest{PageToken: strings.Repeat("t", 512), MaxResults: 100, Format: "ids", Source: "auto"}, nil},
		{"format ids", "format=ids", defaults(), nil},
		{"format full", "format=full", mailbox.ListRequest{}, []string{"format must be ids or metadata"}},
		{"format upper", "format=IDS", mailbox.ListRequest{}, []string{"format must be ids or metadata"}},
		{"format raw", "format=raw", mailbox.ListRequest{}, []string{"format must be ids or metadata"}},
		{"include_spam_trash false", "include_spam_trash=false", defaults(), nil},
		{"include_spam_trash 1", "include_spam_trash=1", func() mailbox.ListRequest { r := defaults(); r.IncludeSpamTrash = true; return r }(), nil},
		{"include_spam_trash yes", "include_spam_trash=yes", mailbox.ListRequest{}, []string{"include_spam_trash must be true or false"}},
		{"q empty", "q=", defaults(), nil},
		{"q at limit", "q=" + strings.Repeat("a", mailbox.MaxQueryLen), func() mailbox.ListRequest { r := defaults(); r.Q = strings.Repeat("a", mailbox.MaxQueryLen); return r }(), nil},
		{"q too long", "q=" + strings.Repeat("a", mailbox.MaxQueryLen+1), mailbox.ListRequest{}, []string{"q must be valid text of at most 1024 bytes on one line"}},
		{"q newline", "q=a%0Ab", mailbox.ListRequest{}, []string{"q must be valid text"}},
		{"q carriage return", "q=a%0Db", mailbox.ListRequest{}, []string{"q must be valid text"}},
		{"q nul", "q=a%00b", mailbox.ListRequest{}, []string{"q must be valid text"}},
		{"q invalid utf8", "q=%FF", mailbox.ListRequest{}, []string{"q must be valid text"}},
		{"every problem at once", "max_results=0&format=x&page_token=&zz=1", mailbox.ListRequest{},
			[]string{"unknown parameter", "max_results must be", "page_token is malformed", "format must be"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := url.ParseQuery(tt.query)
			if err != nil {
				t.Fatalf("ParseQuery(%q): %v", tt.query, err)
			}
			got, err := mailbox.ParseListRequest(v)
			if tt.wantErrs == nil {
				if err != nil {
					t.Fatalf("ParseListRequest: got %v, want nil", err)
				}
				if diff := cmp.Diff(tt.want, got); diff != "" {
					t.Errorf("request mismatch (-want +got):\n%s", diff)
				}
				return
			}
			he := apperr.As(err)
			if he == nil {
				t.Fatalf("ParseListRequest: got %v, want *apperr.Error", err)
			}
			if he.Code != apperr.InvalidRequest {
				t.Errorf("got %s, want invalid_request", he.Code)
			}
			for _, s := range tt.wantErrs {
				if !strings.Contains(he.Message, s) {
					t.Errorf("message %q: want it to contain %q", he.Message, s)
				}
			}
			if diff := cmp.Diff(mailbox.ListRequest{}, got); diff != "" {
				t.Errorf("request with an error is not zero (-want +got):\n%s", diff)
			}
		})
	}
}

func FuzzParseListRequest(f *testing.F) {
	f.Add("")
	f.Add("q=is%3Aunread&label_ids=INBOX&max_results=50&page_token=abc&include_spam_trash=1&format=metadata")
	f.Add("max_results=500&max_results=1")
	f.Add("label_ids=A&label_ids=B_1&label_ids=c-2")
	f.Add("q=%0A&page_token=%20")
	f.Fuzz(func(t *testing.T, raw string) {
		v, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		req, err := mailbox.ParseListRequest(v)
		if err != nil {
			if apperr.CodeOf(err) != apperr.InvalidRequest {
				t.Fatalf("error %v: want an invalid_request *apperr.Error", err)
			}
			return
		}
		for k, vals := range v {
			switch k {
			case "q", "max_results", "page_token", "include_spam_trash", "format", "source":
				if len(vals) != 1 {
					t.Fatalf("accepted %d values of %s", len(vals), k)
				}
			case "label_ids":
			default:
				t.Fatalf("accepted unknown parameter %q", k)
			}
		}
		if req.MaxResults < 1 || req.MaxResults > mailbox.MaxMaxResults {
			t.Fatalf("accepted max_results %d", req.MaxResults)
		}
		if len(req.Q) > mailbox.MaxQueryLen || !utf8.ValidString(req.Q) || strings.ContainsAny(req.Q, "\x00\r\n") {
			t.Fatalf("accepted q %q", req.Q)
		}
		if len(req.LabelIDs) > mailbox.MaxLabelIDs {
			t.Fatalf("accepted %d label ids", len(req.LabelIDs))
		}
		for _, l := range req.LabelIDs {
			if l == "" || len(l) > 64 || strings.Trim(l, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-") != "" {
				t.Fatalf("accepted label id %q", l)
			}
		}
		if len(req.PageToken) > mailbox.MaxPageTokenLen {
			t.Fatalf("accepted page token of %d bytes", len(req.PageToken))
		}
		for i := 0; i < len(req.PageToken); i++ {
			if c := req.PageToken[i]; c < 0x21 || c > 0x7e {
				t.Fatalf("accepted page token %q", req.PageToken)
			}
		}
		if req.Format != mailbox.FormatIDs && req.Format != mailbox.FormatMetadata {
			t.Fatalf("accepted format %q", req.Format)
		}
		switch req.Source {
		case mailbox.SourceAuto, mailbox.SourceGmail:
		case mailbox.SourceMirror:
			if req.Q != "" {
				t.Fatalf("accepted q with source=mirror")
			}
		default:
			t.Fatalf("accepted source %q", req.Source)
		}
	})
}
