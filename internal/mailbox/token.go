package mailbox

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"slices"
	"strconv"

	"example.com/gmailoauth/internal/apperr"
	"example.com/gmailoauth/internal/store"
)

// A page token is what the frontend gets as next_page_token and sends back
// as page_token. It is opaque to the frontend and signed, so it cannot be
// forged, altered, or used by another user or for another listing:
//
//	base64url( version | kind | body | mac )
//
//	version  1 byte, tokenVersion
//	kind     1 byte: kindMirror or kindGmail
//	body     kindMirror: varint internal date (ms) | message id
//	         kindGmail:  uvarint seam (Unix seconds; 0 = none) | Gmail's own page token
//	mac      the first 16 bytes of HMAC-SHA256, under a page-token key of the
//	         app keyset, of "gmailoauth page token" | user id | listing | version | kind | body,
//	         each part length-prefixed
//
// The listing is what a page token continues: q, the label ids (a set) and
// include_spam_trash; max_results and format may change from page to page,
// as with Gmail. A mirror token holds the position of the last message
// served; a Gmail token holds Gmail's own token and, past the mirror's
// horizon, the seam: the listing continues with Gmail's messages older
// than the seam (before:<seam>), which the mirror did not serve.
const (
	tokenVersion = 1
	kindMirror   = 'm'
	kindGmail    = 'g'
	macLen       = 16
)

// pageToken is a verified page token.
type pageToken struct {
	kind byte
	// mirror: the position of the last message served.
	cursor store.MirrorCursor
	// gmail: Gmail's own token ("" = the first page past the seam) and the
	// seam (0 = none).
	gmailToken string
	seam       int64
}

// errPageToken is the answer to every page token that does not verify.
func errPageToken() error {
	return apperr.New(apperr.InvalidPageToken,
		"page_token does not belong to this listing (it was altered, issued to another user or for other filters); list again from the first page")
}

// listing returns the canonical form of what a page token continues.
func listing(req ListRequest) []byte {
	labels := slices.Clone(req.LabelIDs)
	slices.Sort(labels)
	labels = slices.Compact(labels)
	b := appendPart(nil, req.Q)
	b = binary.AppendUvarint(b, uint64(len(labels)))
	for _, l := range labels {
		b = appendPart(b, l)
	}
	return strconv.AppendBool(b, req.IncludeSpamTrash)
}

func appendPart(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func mac(key []byte, userID string, listing, msg []byte) []byte {
	h := hmac.New(sha256.New, key)
	h.Write(appendPart(nil, "gmailoauth page token"))
	h.Write(appendPart(nil, userID))
	h.Write(appendPart(nil, string(listing)))
	h.Write(msg)
	return h.Sum(nil)[:macLen]
}

// sealToken signs t for userID's listing with the first of keys.
func sealToken(keys [][]byte, userID string, req ListRequest, t pageToken) string {
	msg := []byte{tokenVersion, t.kind}
	switch t.kind {
	case kindMirror:
		msg = binary.AppendVarint(msg, t.cursor.InternalDate)
		msg = append(msg, t.cursor.ID...)
	case kindGmail:
		msg = binary.AppendUvarint(msg, uint64(t.seam))
		msg = append(msg, t.gmailToken...)
	}
	msg = append(msg, mac(keys[0], userID, listing(req), msg)...)
	return base64.RawURLEncoding.EncodeToString(msg)
}

// openToken verifies a page token of userID's listing against every key
// (the keyset may have been rotated since it was issued).
func openToken(keys [][]byte, userID string, req ListRequest, s string) (*pageToken, error) {
	raw, err := base64.RawURLEncoding.Strict().DecodeString(s)
	if err != nil || len(raw) < 2+macLen || raw[0] != tokenVersion {
		return nil, errPageToken()
	}
	msg, sum := raw[:len(raw)-macLen], raw[len(raw)-macLen:]
	l := listing(req)
	ok := false
	for _, k := range keys {
		if hmac.Equal(sum, mac(k, userID, l, msg)) {
			ok = true
			break
		}
	}
	if !ok {
		return nil, errPageToken()
	}
	t := &pageToken{kind: msg[1]}
	body := msg[2:]
	switch t.kind {
	case kindMirror:
		d, n := binary.Varint(body)
		if n <= 0 {
			return nil, errPageToken()
		}
		t.cursor = store.MirrorCursor{InternalDate: d, ID: string(body[n:])}
	case kindGmail:
		seam, n := binary.Uvarint(body)
		if n <= 0 || seam > 1<<40 || seam == 0 && n == len(body) {
			return nil, errPageToken()
		}
		t.seam, t.gmailToken = int64(seam), string(body[n:])
	default:
		return nil, errPageToken()
	}
	return t, nil
}
