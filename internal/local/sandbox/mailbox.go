package sandbox

import (
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Message references: seeded message i is ref i (i >= 0, 0 = newest seeded);
// the k-th added message is ref -(k+1).

const (
	seedIDBase     uint64 = 0x18f3a5c000000000 // low 16 bits zero
	messageSpacing        = 8 * time.Hour
	historyBase    uint64 = 1_000_000
)

// System labels plus the one user label, as users.labels.list returns them.
var systemLabels = []string{
	"CHAT", "SENT", "INBOX", "IMPORTANT", "TRASH", "DRAFT", "SPAM",
	"CATEGORY_FORUMS", "CATEGORY_UPDATES", "CATEGORY_PERSONAL", "CATEGORY_PROMOTIONS",
	"CATEGORY_SOCIAL", "STARRED", "UNREAD",
}

const receiptsLabelID, receiptsLabelName = "Label_1", "Receipts"

func knownLabel(id string) bool { return id == receiptsLabelID || slices.Contains(systemLabels, id) }

// ---- deterministic content ----

func mix(x uint64) uint64 { // splitmix64
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

type sender struct{ name, addr string }

func (s sender) String() string { return s.name + " <" + s.addr + ">" }

var senders = []sender{
	{"Alice Martin", "alice.martin@example.org"},             // 0 person
	{"Bob Chen", "bob.chen@example.net"},                     // 1 person
	{"Carol Diaz", "carol.diaz@example.com"},                 // 2 person
	{"GitHub", "notifications@github.com"},                   // 3
	{"Acme Coffee", "receipts@acmecoffee.example"},           // 4
	{"Northwind Airlines", "no-reply@northwind.example"},     // 5
	{"Bank of Example", "alerts@bankofexample.example"},      // 6
	{"The Weekly Digest", "newsletter@weeklydigest.example"}, // 7
	{"Google Calendar", "calendar-notification@google.com"},  // 8
	{"Stripe", "receipts@stripe.example"},                    // 9
	{"Dave Okafor", "dave.okafor@example.org"},               // 10 person
	{"Linear", "notifications@linear.example"},               // 11
	{"Fresh Market", "deals@freshmarket.example"},            // 12
	{"Hiking Club", "hello@hikingclub.example"},              // 13
}

type template struct {
	sender    int
	subject   string // %d = a number derived from the message
	snippet   string
	category  string
	receipt   bool
	important bool
}

var templates = []template{
	{0, "Lunch on Thursday?", "Hi, are you free for lunch on Thursday? There is a new ramen place near the office, table %d.", "CATEGORY_PERSONAL", false, true},
	{1, "Draft of the Q%d planning doc", "I put together a first draft of the planning doc, comments welcome before Friday.", "CATEGORY_PERSONAL", false, true},
	{2, "Photos from the weekend", "Here are the photos from the weekend, album %d has the best ones from the lake.", "CATEGORY_PERSONAL", false, false},
	{3, "[acme/api] Pull request #%d: fix token refresh race", "Merged the change that makes token refresh single flight. 3 files changed.", "CATEGORY_UPDATES", false, false},
	{4, "Your Acme Coffee receipt #%d", "Thanks for your order. Total: 4.50 EUR, paid with card ending 4242.", "CATEGORY_UPDATES", true, false},
	{5, "Your flight NW%d is confirmed", "Booking confirmed. Check-in opens 24 hours before departure. Seat 14C.", "CATEGORY_UPDATES", false, true},
	{6, "Security alert: new sign-in #%d", "We noticed a new sign-in to your account from a Linux device. If this was you, no action is needed.", "CATEGORY_UPDATES", false, true},
	{7, "The Weekly Digest, issue %d", "This week: serverless Go, OAuth pitfalls and a short history of email.", "CATEGORY_PROMOTIONS", false, false},
	{8, "Invitation: Sprint review #%d", "You have been invited to Sprint review. Join with Google Meet.", "CATEGORY_UPDATES", false, false},
	{9, "Receipt from Example SaaS, invoice %d", "Amount paid 29.00 USD. Download your invoice and receipt from the dashboard.", "CATEGORY_UPDATES", true, false},
	{10, "Re: book club pick #%d", "I vote for the mystery novel. Shall we meet at my place this time?", "CATEGORY_PERSONAL", false, false},
	{11, "Issue ENG-%d assigned to you", "Sync job stops before the function deadline was assigned to you by Bob Chen.", "CATEGORY_UPDATES", false, false},
	{12, "Weekend deals: %d%% off fresh fruit", "Save big this weekend on strawberries, apples and more. Offer ends Sunday.", "CATEGORY_PROMOTIONS", false, false},
	{13, "Trail report for hike %d", "The ridge trail is open again. Meet at the parking lot at 8 am, bring water.", "CATEGORY_SOCIAL", false, false},
	{4, "Acme Coffee order %d ready for pickup", "Your order is ready at the counter. Receipt attached below.", "CATEGORY_UPDATES", true, false},
	{0, "Re: apartment viewing %d", "The landlord confirmed Saturday at 11. I will send the address later.", "CATEGORY_PERSONAL", false, true},
}

var spamTemplate = template{-1, "You have WON a prize #%d", "Claim your reward now by confirming your bank details.", "", false, false}

var spamSender = sender{"Prize Center", "winner@prizes.invalid"}

var sentSnippets = []string{
	"Thanks, sounds good. I will send the details tomorrow.",
	"Sure, count me in. See you then.",
	"Attached are my notes from the meeting, let me know what you think.",
	"Sorry for the late reply, I was travelling this week.",
}

type kind int

const (
	kindInbox kind = iota
	kindArchived
	kindSent
	kindSpam
	kindTrash
)

func seededKind(i int) kind {
	switch {
	case i%53 == 7:
		return kindSpam
	case i%61 == 11:
		return kindTrash
	case i%10 == 3:
		return kindSent
	case i%23 == 5:
		return kindArchived
	}
	return kindInbox
}

func seededTemplate(i int) (template, int) {
	h := mix(uint64(i))
	return templates[h%uint64(len(templates))], 100 + int((h>>20)%900)
}

func seededLabels(i int) []string {
	t, _ := seededTemplate(i)
	switch seededKind(i) {
	case kindSpam:
		return []string{"SPAM"}
	case kindTrash:
		return []string{"TRASH", t.category}
	case kindSent:
		return []string{"SENT"}
	}
	var l []string
	if i%3 == 0 {
		l = append(l, "UNREAD")
	}
	if i%17 == 0 {
		l = append(l, "STARRED")
	}
	if t.important {
		l = append(l, "IMPORTANT")
	}
	if t.receipt {
		l = append(l, receiptsLabelID)
	}
	l = append(l, t.category)
	if seededKind(i) == kindInbox {
		l = append(l, "INBOX")
	}
	return l
}

// content is the generated text of a message.
type content struct {
	from, to, subject, snippet string
	threadRef                  int
}

func inbound(t template, n int, to string) content {
	subj := t.subject
	if strings.Contains(subj, "%") {
		subj = fmt.Sprintf(subj, n)
	}
	snip := t.snippet
	if strings.Contains(snip, "%") {
		snip = fmt.Sprintf(snip, n)
	}
	from := spamSender
	if t.sender >= 0 {
		from = senders[t.sender]
	}
	return content{from: from.String(), to: to, subject: subj, snippet: snip}
}

// ---- mailbox ----

type addedMsg struct {
	date      time.Time
	labels    []string
	historyID uint64
}

type histRec struct {
	id      uint64
	typ     string // messageAdded, messageDeleted, labelAdded, labelRemoved
	ref     int
	labels  []string // the message's labels after the change
	changed []string // labels added or removed
}

type countKey struct {
	q         string
	labels    string
	spam      bool
	historyID uint64
}

type mailbox struct {
	mu      sync.Mutex
	email   string
	created time.Time
	size    int

	added     []*addedMsg
	deleted   map[int]bool
	labels    map[int][]string // label overrides of seeded messages
	msgHist   map[int]uint64   // historyId overrides of seeded messages
	historyID uint64
	floor     uint64 // oldest startHistoryId history.list accepts
	history   []histRec
	counts    map[countKey]int // cached resultSizeEstimate
}

func newMailbox(email string, size int, created time.Time) *mailbox {
	h := historyBase + uint64(size)
	return &mailbox{
		email: email, created: created, size: size,
		deleted: map[int]bool{}, labels: map[int][]string{}, msgHist: map[int]uint64{},
		historyID: h, floor: h, counts: map[countKey]int{},
	}
}

func idOf(ref int) string {
	if ref >= 0 {
		return fmt.Sprintf("%016x", (seedIDBase-uint64(ref+1)<<16)|(mix(uint64(ref))&0xffff))
	}
	k := uint64(-ref - 1)
	return fmt.Sprintf("%016x", (seedIDBase+k<<16)|(mix(k|1<<40)&0xffff))
}

// refOf parses a message id; ok is false for ids that cannot exist.
func refOf(id string) (int, bool) {
	if len(id) != 16 {
		return 0, false
	}
	v, err := strconv.ParseUint(id, 16, 64)
	if err != nil {
		return 0, false
	}
	hi, base := v>>16, seedIDBase>>16
	var ref int
	if hi < base {
		ref = int(base - hi - 1)
	} else {
		if hi-base > 1<<40 {
			return 0, false
		}
		ref = -int(hi-base) - 1
	}
	return ref, idOf(ref) == strings.ToLower(id)
}

func (mb *mailbox) exists(ref int) bool {
	if ref >= 0 {
		return ref < mb.size && !mb.deleted[ref]
	}
	return -ref-1 < len(mb.added) && !mb.deleted[ref]
}

func (mb *mailbox) labelsOf(ref int) []string {
	if ref < 0 {
		return mb.added[-ref-1].labels
	}
	if l, ok := mb.labels[ref]; ok {
		return l
	}
	return seededLabels(ref)
}

func (mb *mailbox) dateOf(ref int) time.Time {
	if ref < 0 {
		return mb.added[-ref-1].date
	}
	return mb.created.Add(-time.Duration(ref) * messageSpacing)
}

func (mb *mailbox) historyOf(ref int) uint64 {
	if ref < 0 {
		return mb.added[-ref-1].historyID
	}
	if h, ok := mb.msgHist[ref]; ok {
		return h
	}
	return historyBase + uint64(mb.size-ref)
}

func (mb *mailbox) contentOf(ref int) content {
	if ref < 0 {
		k := -ref - 1
		h := mix(uint64(k) | 1<<41)
		t := templates[h%uint64(len(templates))]
		c := inbound(t, 1000+k, mb.email)
		c.threadRef = ref
		return c
	}
	i := ref
	t, n := seededTemplate(i)
	switch seededKind(i) {
	case kindSpam:
		c := inbound(spamTemplate, n, mb.email)
		c.threadRef = ref
		return c
	case kindSent:
		p := i + 1
		me := displayName(mb.email) + " <" + mb.email + ">"
		snip := sentSnippets[mix(uint64(i))%uint64(len(sentSnippets))]
		if p < mb.size && (seededKind(p) == kindInbox || seededKind(p) == kindArchived) {
			pc := mb.contentOf(p)
			return content{from: me, to: pc.from, subject: "Re: " + strings.TrimPrefix(pc.subject, "Re: "), snippet: snip, threadRef: p}
		}
		to := senders[[]int{0, 1, 2, 10}[n%4]]
		return content{from: me, to: to.String(), subject: fmt.Sprintf("Notes from our call #%d", n), snippet: snip, threadRef: ref}
	}
	c := inbound(t, n, mb.email)
	c.threadRef = ref
	return c
}

func (mb *mailbox) threadOf(ref int) string {
	if ref >= 0 && seededKind(ref) == kindSent {
		return idOf(mb.contentOf(ref).threadRef)
	}
	return idOf(ref)
}

// each calls fn for every live message, newest first, starting at ref from
// (nil = from the newest). fn returns false to stop.
func (mb *mailbox) each(from *int, fn func(ref int) bool) {
	startAdded, startSeed := len(mb.added)-1, 0
	if from != nil {
		if *from < 0 {
			startAdded = min(-*from-1, len(mb.added)-1)
		} else {
			startAdded, startSeed = -1, *from
		}
	}
	for k := startAdded; k >= 0; k-- {
		ref := -k - 1
		if mb.deleted[ref] {
			continue
		}
		if !fn(ref) {
			return
		}
	}
	for i := startSeed; i < mb.size; i++ {
		if mb.deleted[i] {
			continue
		}
		if !fn(i) {
			return
		}
	}
}

func (mb *mailbox) bump() uint64 {
	mb.historyID++
	return mb.historyID
}

func (mb *mailbox) addMessages(n int, now time.Time) []string {
	ids := make([]string, 0, n)
	for range n {
		h := mb.bump()
		mb.added = append(mb.added, &addedMsg{date: now, labels: []string{"UNREAD", "INBOX"}, historyID: h})
		ref := -len(mb.added)
		mb.history = append(mb.history, histRec{id: h, typ: "messageAdded", ref: ref, labels: []string{"UNREAD", "INBOX"}})
		ids = append(ids, idOf(ref))
	}
	return ids
}

func (mb *mailbox) deleteMessages(ids []string) error {
	refs := make([]int, 0, len(ids))
	for _, id := range ids {
		ref, ok := refOf(id)
		if !ok || !mb.exists(ref) {
			return fmt.Errorf("sandbox: no message %q in the mailbox of %s", id, mb.email)
		}
		refs = append(refs, ref)
	}
	for _, ref := range refs {
		if mb.deleted[ref] { // listed twice
			continue
		}
		labels := mb.labelsOf(ref)
		mb.deleted[ref] = true
		mb.history = append(mb.history, histRec{id: mb.bump(), typ: "messageDeleted", ref: ref, labels: labels})
	}
	return nil
}

func (mb *mailbox) modifyLabels(id string, add, remove []string) error {
	ref, ok := refOf(id)
	if !ok || !mb.exists(ref) {
		return fmt.Errorf("sandbox: no message %q in the mailbox of %s", id, mb.email)
	}
	for _, l := range append(slices.Clone(add), remove...) {
		if !knownLabel(l) {
			return fmt.Errorf("sandbox: unknown label id %q", l)
		}
	}
	cur := slices.Clone(mb.labelsOf(ref))
	var added, removed []string
	for _, l := range add {
		if !slices.Contains(cur, l) {
			cur = append(cur, l)
			added = append(added, l)
		}
	}
	for _, l := range remove {
		if i := slices.Index(cur, l); i >= 0 && !slices.Contains(added, l) {
			cur = slices.Delete(cur, i, i+1)
			removed = append(removed, l)
		}
	}
	set := func(h uint64) {
		if ref < 0 {
			a := mb.added[-ref-1]
			a.labels, a.historyID = cur, h
		} else {
			mb.labels[ref], mb.msgHist[ref] = cur, h
		}
	}
	if len(added) > 0 {
		h := mb.bump()
		set(h)
		mb.history = append(mb.history, histRec{id: h, typ: "labelAdded", ref: ref, labels: cur, changed: added})
	}
	if len(removed) > 0 {
		h := mb.bump()
		set(h)
		mb.history = append(mb.history, histRec{id: h, typ: "labelRemoved", ref: ref, labels: cur, changed: removed})
	}
	return nil
}

// ---- search ----

type term struct {
	neg bool
	op  string // "" = free text
	val string // lower case
}

// clause is a disjunction of terms; a query is a conjunction of clauses.
type clause []term

type query struct {
	clauses []clause
	// mentionsSpamTrash is set when the query names SPAM or TRASH, which
	// lifts the default exclusion as in Gmail.
	mentionsSpamTrash bool
}

// tokenize splits q on blanks, keeping quoted phrases (also after "op:") whole.
func tokenize(q string) []string {
	var toks []string
	var b strings.Builder
	inQuote := false
	flush := func() {
		if b.Len() > 0 {
			toks = append(toks, b.String())
			b.Reset()
		}
	}
	for _, r := range q {
		switch {
		case r == '"':
			inQuote = !inQuote
			b.WriteRune(r)
		case !inQuote && (r == ' ' || r == '\t' || r == '\n'):
			flush()
		default:
			b.WriteRune(r)
		}
	}
	flush()
	return toks
}

var knownOps = map[string]bool{
	"from": true, "to": true, "subject": true, "label": true, "in": true, "is": true,
	"newer_than": true, "older_than": true, "after": true, "before": true, "newer": true,
	"older": true, "category": true, "has": true, "cc": true, "rfc822msgid": true,
}

func parseQuery(q string) query {
	var out query
	joinNext := false
	for _, tok := range tokenize(q) {
		if tok == "OR" || tok == "|" {
			joinNext = len(out.clauses) > 0
			continue
		}
		t := term{}
		if strings.HasPrefix(tok, "-") && len(tok) > 1 {
			t.neg, tok = true, tok[1:]
		}
		tok = strings.Trim(tok, "(){}")
		if op, val, ok := strings.Cut(tok, ":"); ok && knownOps[strings.ToLower(op)] && val != "" {
			t.op, t.val = strings.ToLower(op), strings.ToLower(strings.Trim(val, `"`))
		} else {
			t.val = strings.ToLower(strings.Trim(tok, `"`))
		}
		if t.val == "" {
			continue
		}
		if (t.op == "in" || t.op == "label") && (t.val == "spam" || t.val == "trash" || t.val == "anywhere") {
			out.mentionsSpamTrash = true
		}
		if joinNext {
			last := len(out.clauses) - 1
			out.clauses[last] = append(out.clauses[last], t)
			joinNext = false
			continue
		}
		out.clauses = append(out.clauses, clause{t})
	}
	return out
}

// lazyMsg evaluates a message for search, generating its text only if needed.
type lazyMsg struct {
	mb     *mailbox
	ref    int
	labels []string
	date   time.Time
	c      *content
	now    time.Time
}

func (m *lazyMsg) text() *content {
	if m.c == nil {
		c := m.mb.contentOf(m.ref)
		c.from, c.to, c.subject, c.snippet = strings.ToLower(c.from), strings.ToLower(c.to), strings.ToLower(c.subject), strings.ToLower(c.snippet)
		m.c = &c
	}
	return m.c
}

func (m *lazyMsg) has(label string) bool { return slices.Contains(m.labels, label) }

var labelAliases = map[string]string{
	"inbox": "INBOX", "sent": "SENT", "spam": "SPAM", "trash": "TRASH", "unread": "UNREAD",
	"starred": "STARRED", "important": "IMPORTANT", "draft": "DRAFT", "drafts": "DRAFT", "chats": "CHAT",
	"receipts": receiptsLabelID, strings.ToLower(receiptsLabelID): receiptsLabelID,
	"personal": "CATEGORY_PERSONAL", "primary": "CATEGORY_PERSONAL", "social": "CATEGORY_SOCIAL",
	"promotions": "CATEGORY_PROMOTIONS", "updates": "CATEGORY_UPDATES", "forums": "CATEGORY_FORUMS",
}

func labelFromQuery(v string) string {
	v = strings.ReplaceAll(strings.ReplaceAll(v, " ", "-"), "/", "-")
	if id, ok := labelAliases[v]; ok {
		return id
	}
	if knownLabel(strings.ToUpper(v)) {
		return strings.ToUpper(v)
	}
	return ""
}

func parseRelative(v string, now time.Time) (time.Time, bool) {
	if len(v) < 2 {
		return time.Time{}, false
	}
	n, err := strconv.Atoi(v[:len(v)-1])
	if err != nil || n < 0 {
		return time.Time{}, false
	}
	switch v[len(v)-1] {
	case 'd':
		return now.AddDate(0, 0, -n), true
	case 'm':
		return now.AddDate(0, -n, 0), true
	case 'y':
		return now.AddDate(-n, 0, 0), true
	case 'h':
		return now.Add(-time.Duration(n) * time.Hour), true
	}
	return time.Time{}, false
}

func parseDate(v string) (time.Time, bool) {
	if n, err := strconv.ParseInt(v, 10, 64); err == nil && n > 100000 {
		return time.Unix(n, 0), true
	}
	for _, layout := range []string{"2006/1/2", "2006-1-2", "1/2/2006"} {
		if t, err := time.ParseInLocation(layout, v, time.UTC); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}

func (t term) matches(m *lazyMsg) bool {
	r := t.match(m)
	if t.neg {
		return !r
	}
	return r
}

func (t term) match(m *lazyMsg) bool {
	v := t.val
	switch t.op {
	case "":
		c := m.text()
		return strings.Contains(c.subject, v) || strings.Contains(c.from, v) || strings.Contains(c.snippet, v)
	case "from":
		if v == "me" {
			v = m.mb.email
		}
		return strings.Contains(m.text().from, v)
	case "to", "cc":
		if v == "me" {
			v = m.mb.email
		}
		return t.op == "to" && strings.Contains(m.text().to, v)
	case "subject":
		return strings.Contains(m.text().subject, v)
	case "label", "in", "category":
		if v == "anywhere" && t.op == "in" {
			return true
		}
		id := labelFromQuery(v)
		return id != "" && m.has(id)
	case "is":
		switch v {
		case "unread":
			return m.has("UNREAD")
		case "read":
			return !m.has("UNREAD")
		case "starred":
			return m.has("STARRED")
		case "unstarred":
			return !m.has("STARRED")
		case "important":
			return m.has("IMPORTANT")
		}
		return false
	case "newer_than", "older_than":
		at, ok := parseRelative(v, m.now)
		if !ok {
			return t.freeWord(m)
		}
		if t.op == "newer_than" {
			return m.date.After(at)
		}
		return m.date.Before(at)
	case "after", "newer", "before", "older":
		at, ok := parseDate(v)
		if !ok {
			return t.freeWord(m)
		}
		if t.op == "after" || t.op == "newer" {
			return !m.date.Before(at)
		}
		return m.date.Before(at)
	case "has":
		return false // no attachments, drive files or user labels beyond Label_1
	case "rfc822msgid":
		return strings.Contains(strings.ToLower(messageIDHeader(idOf(m.ref))), v)
	}
	return t.freeWord(m)
}

func (t term) freeWord(m *lazyMsg) bool {
	return term{val: t.op + ":" + t.val}.match(m)
}

// filter is a compiled messages.list request.
type filter struct {
	q           query
	labelIDs    []string
	excludeSpam bool
	now         time.Time
	// notBefore, when set, is a date every match is at or after: seeded
	// messages are ordered by date, so a scan stops at the first older one.
	notBefore time.Time
}

func newFilter(q string, labelIDs []string, includeSpamTrash bool, now time.Time) *filter {
	f := &filter{q: parseQuery(q), labelIDs: labelIDs, now: now}
	f.excludeSpam = !includeSpamTrash && !f.q.mentionsSpamTrash &&
		!slices.Contains(labelIDs, "SPAM") && !slices.Contains(labelIDs, "TRASH")
	for _, c := range f.q.clauses {
		if len(c) != 1 || c[0].neg {
			continue
		}
		var at time.Time
		var ok bool
		switch c[0].op {
		case "newer_than":
			at, ok = parseRelative(c[0].val, now)
		case "after", "newer":
			at, ok = parseDate(c[0].val)
		}
		if ok && at.After(f.notBefore) {
			f.notBefore = at
		}
	}
	return f
}

// exhausted reports whether no message at or after ref can match.
func (f *filter) exhausted(mb *mailbox, ref int) bool {
	return ref >= 0 && !f.notBefore.IsZero() && mb.dateOf(ref).Before(f.notBefore)
}

func (f *filter) match(mb *mailbox, ref int) bool {
	m := lazyMsg{mb: mb, ref: ref, labels: mb.labelsOf(ref), date: mb.dateOf(ref), now: f.now}
	for _, l := range f.labelIDs {
		if !m.has(l) {
			return false
		}
	}
	if f.excludeSpam && (m.has("SPAM") || m.has("TRASH")) {
		return false
	}
	for _, c := range f.q.clauses {
		ok := false
		for _, t := range c {
			if t.matches(&m) {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	return true
}

// list returns up to max matching refs starting at from, the ref to resume
// at (or nil), and the total number of matches.
func (mb *mailbox) list(f *filter, rawQ string, from *int, max int) (refs []int, next *int, total int) {
	mb.each(from, func(ref int) bool {
		if f.exhausted(mb, ref) {
			return false
		}
		if !f.match(mb, ref) {
			return true
		}
		if len(refs) == max {
			r := ref
			next = &r
			return false
		}
		refs = append(refs, ref)
		return true
	})
	key := countKey{q: rawQ, labels: strings.Join(f.labelIDs, ","), spam: f.excludeSpam, historyID: mb.historyID}
	relative := strings.Contains(rawQ, "_than:")
	if n, ok := mb.counts[key]; ok && !relative {
		return refs, next, n
	}
	if from == nil && next == nil {
		total = len(refs)
	} else {
		mb.each(nil, func(ref int) bool {
			if f.exhausted(mb, ref) {
				return false
			}
			if f.match(mb, ref) {
				total++
			}
			return true
		})
	}
	if !relative {
		if len(mb.counts) > 32 {
			clear(mb.counts)
		}
		mb.counts[key] = total
	}
	return refs, next, total
}

// sortedLabels returns labels in a stable order for output.
func sortedLabels(l []string) []string {
	out := slices.Clone(l)
	sort.Strings(out)
	return out
}
