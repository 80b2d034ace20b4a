package demo_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"example.com/gmailoauth/internal/local/devtest"
	"example.com/gmailoauth/internal/local/sandbox"
	"example.com/gmailoauth/internal/store"
	"example.com/gmailoauth/internal/store/memstore"
)

// findChromium returns Debian's chromium, or fails (CI) or skips (elsewhere).
func findChromium(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "/usr/bin/chromium"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	const how = "chromium is not installed: apt-get install -y chromium (or set CHROMIUM=/path/to/chrome)"
	if os.Getenv("CI") != "" && os.Getenv("CI") != "false" {
		t.Fatal(how)
	}
	t.Skip(how)
	return ""
}

// browser starts a headless Chromium with a fresh profile and returns a tab.
func browser(t *testing.T, exe string) context.Context {
	t.Helper()
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(exe),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-default-apps", true),
		chromedp.Flag("disable-features", "Translate,OptimizationHints,MediaRouter"),
		chromedp.Flag("lang", "en-US"),
		chromedp.WindowSize(1100, 900),
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	t.Cleanup(cancel)
	actx, acancel := chromedp.NewExecAllocator(ctx, opts...)
	t.Cleanup(acancel)
	tab, tcancel := chromedp.NewContext(actx)
	t.Cleanup(tcancel)
	return tab
}

// TestDemoInBrowser drives the demo page in Chromium through the whole flow
// against the sandbox: connect, list, next page, search, refresh, an empty
// and a failed search, revoke at "Google", Reconnect, disconnect, and a
// misconfigured API. It checks the page on a 390 px phone (no sideways
// scroll) and saves the desktop, phone and misconfigured screenshots to
// $SCREENSHOT_DIR. The page is served on its own origin and calls the
// functions cross-origin, so CORS (preflights included) is exercised for real.
func TestDemoInBrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test: not in -short mode")
	}
	exe := findChromium(t)
	start := time.Now()
	st := memstore.New()
	s := devtest.Start(t, devtest.Options{Store: st, Demo: true})
	const email = "alice@example.com"
	tab := browser(t, exe)

	// Collect what the page writes to the console: exceptions, CSP or CORS
	// refusals fail the test.
	var mu sync.Mutex
	var console []chromedp.ConsoleMessage
	messages := chromedp.Console(tab)
	go func() {
		for m, err := range messages {
			if err != nil {
				return
			}
			mu.Lock()
			console = append(console, m)
			mu.Unlock()
		}
	}()

	step := func(name string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(tab, actions...); err != nil {
			t.Fatalf("%s: %v\npage state: %s", name, err, pageState(tab))
		}
	}
	eval := func(expr string) string {
		t.Helper()
		v, err := chromedp.Run(tab, chromedp.Evaluate[string](expr))
		if err != nil {
			t.Fatalf("evaluate %s: %v", expr, err)
		}
		return v
	}
	waitState := func(name, state string) {
		t.Helper()
		step(name, chromedp.WaitReady(chromedp.CSS(`body[data-state="`+state+`"]:not(.busy)`)))
	}
	rows := func() []string {
		t.Helper()
		v, err := chromedp.Run(tab, chromedp.Evaluate[[]string](
			`[...document.querySelectorAll('#messages li')].map(li => li.dataset.id + '|' + li.querySelector('.subject').textContent)`))
		if err != nil {
			t.Fatalf("rows: %v", err)
		}
		return v
	}

	// 1. Open the page and connect: POST /authorize (preflighted), consent
	// (automatic in the sandbox), callback, back to the page with the session.
	step("open the demo", chromedp.Navigate(s.DemoURL+"/"), chromedp.WaitVisible(chromedp.ID("connect")))
	if got := eval(`document.getElementById('login-hint').value`); got != email {
		t.Errorf("login_hint field = %q, want %q", got, email)
	}
	phone(t, tab, "signed out")
	// Two clicks in a row start one authorization: the first disables the
	// button before its request is sent.
	step("connect", chromedp.Evaluate[chromedp.Void](`(() => { const b = document.getElementById('connect'); b.click(); b.click(); })()`))
	waitState("list after connect", "listed")
	if n := strings.Count(s.Logs.String(), `"message":"POST /authorize 200"`); n != 1 {
		t.Errorf("two clicks on Connect sent %d POST /authorize, want 1", n)
	}
	page1 := rows()
	if len(page1) != 10 {
		t.Fatalf("first page: %d rows, want 10: %v", len(page1), page1)
	}
	if loc := eval(`location.href`); loc != s.DemoURL+"/" {
		t.Errorf("after the return the address is %q, want %q (fragment cleared)", loc, s.DemoURL+"/")
	}
	if eval(`sessionStorage.getItem('gmailoauth.session') ? 'yes' : 'no'`) != "yes" ||
		eval(`String(localStorage.length)+document.cookie`) != "0" {
		t.Errorf("want the session in sessionStorage only")
	}
	if who := eval(`document.getElementById('who').textContent`); who != email {
		t.Errorf("connected as %q, want %q", who, email)
	}
	// The page's calls went to the functions' origin, not its own.
	if n := eval(`String(performance.getEntriesByType('resource').filter(e => e.name.startsWith(` + jsString(s.URL+"/list-messages?") + `)).length)`); n == "0" {
		t.Errorf("no cross-origin call to %s/list-messages seen by the page", s.URL)
	}
	if got := eval(`document.getElementById('source').textContent`); got != "Live from Gmail" {
		t.Errorf("before the first sync the page says %q, want Live from Gmail", got)
	}

	// The scheduler syncs the mailbox; Refresh lists from the mirror, and
	// the page says so and how fresh it is.
	s.Sweep(t)
	step("refresh after the sync", chromedp.Click(chromedp.ID("refresh")),
		chromedp.WaitReady(chromedp.CSS(`#source[data-source="mirror"]`)))
	waitState("listed from the mirror", "listed")
	if got := eval(`document.getElementById('source').textContent`); !regexp.MustCompile(`^From the mirror, synced [0-9]+ s ago$`).MatchString(got) {
		t.Errorf("after the sync the page says %q, want From the mirror, synced N s ago", got)
	}
	if got := rows(); strings.Join(got, "\n") != strings.Join(page1, "\n") {
		t.Errorf("from the mirror the first page is %v, want the same as live %v", got, page1)
	}
	screenshot(t, tab, "demo-messages.png", desktopWidth)

	// On a 390 px phone the list fits: no sideways scroll, and each
	// subject and snippet has the width of the screen, not a narrow column.
	phone(t, tab, "messages listed")
	if narrow := eval(`String([...document.querySelectorAll('#messages .subject, #messages .snippet')].filter(e => e.clientWidth < 300).length)`); narrow != "0" {
		t.Errorf("at 390 px, %s subjects or snippets are narrower than 300 px", narrow)
	}
	screenshot(t, tab, "demo-phone.png", phoneWidth)
	step("back to the desktop size", chromedp.EmulateViewport(desktopWidth, 900))

	// 2. Next page: different messages, page 2; back to page 1.
	step("next page", chromedp.Click(chromedp.ID("next")), chromedp.WaitReady(chromedp.CSS(`#messages[data-page="2"]`)))
	waitState("page 2 listed", "listed")
	page2 := rows()
	if len(page2) != 10 || page2[0] == page1[0] {
		t.Errorf("page 2 = %v, want 10 other messages than page 1", page2)
	}
	step("previous page", chromedp.Click(chromedp.ID("prev")), chromedp.WaitReady(chromedp.CSS(`#messages[data-page="1"]`)))
	waitState("page 1 listed", "listed")
	if got := rows(); got[0] != page1[0] {
		t.Errorf("back on page 1: first row %q, want %q", got[0], page1[0])
	}

	// 3. Search with q.
	step("search", chromedp.SetValue(chromedp.ID("q"), "subject:receipt"), chromedp.Click(chromedp.ID("search")),
		chromedp.Poll[chromedp.Void](`document.getElementById('summary').textContent.includes('subject:receipt')`))
	waitState("search listed", "listed")
	if got := eval(`document.getElementById('source').textContent`); got != "Live from Gmail" {
		t.Errorf("a search says %q, want Live from Gmail (q goes to Gmail)", got)
	}
	found := rows()
	if len(found) == 0 {
		t.Fatalf("search subject:receipt listed nothing")
	}
	for _, r := range found {
		if !strings.Contains(strings.ToLower(r), "receipt") {
			t.Errorf("search subject:receipt listed %q", r)
		}
	}

	// Refresh runs what is in the box, even when it was not submitted.
	step("refresh an edited search", chromedp.SetValue(chromedp.ID("q"), "is:starred"), chromedp.Click(chromedp.ID("refresh")),
		chromedp.Poll[chromedp.Void](`document.getElementById('summary').textContent.includes('is:starred')`))
	waitState("refresh listed", "listed")

	// An empty result says so.
	step("search for nothing", chromedp.SetValue(chromedp.ID("q"), "subject:no-such-subject-anywhere"), chromedp.Click(chromedp.ID("search")),
		chromedp.Poll[chromedp.Void](`document.getElementById('empty').textContent.includes('no-such-subject')`))
	waitState("empty listed", "listed")
	if got := eval(`document.getElementById('empty').checkVisibility() ? document.getElementById('empty').textContent : 'hidden'`); !strings.HasPrefix(got, "No messages") {
		t.Errorf("empty result: %q, want \"No messages\" shown", got)
	}

	// While a search is under way the page says so and every control
	// waits; a failed search clears what the previous one listed.
	step("list again", chromedp.Evaluate[chromedp.Void](`document.getElementById('q').value = ''`), chromedp.Click(chromedp.ID("search")))
	waitState("listed again", "listed")
	s.Sandbox.SetGmailFaults(sandbox.GmailFaults{Latency: 300 * time.Millisecond, FailNext: 1000})
	step("failing search", chromedp.SetValue(chromedp.ID("q"), "is:unread"), chromedp.Click(chromedp.ID("search")),
		chromedp.Poll[chromedp.Void](`document.body.classList.contains('busy')`))
	if got := eval(`String([...document.querySelectorAll('button, input')].filter(e => !e.disabled).length) + ' ' + document.getElementById('busy').checkVisibility()`); got != "0 true" {
		t.Errorf("while busy: %q, want every control disabled and the busy line shown (\"0 true\")", got)
	}
	waitState("search failed", "error")
	s.Sandbox.SetGmailFaults(sandbox.GmailFaults{})
	if n := len(rows()); n != 0 || eval(`document.getElementById('results').checkVisibility() ? 'shown' : 'hidden'`) != "hidden" {
		t.Errorf("after a failed search: %d messages of the previous search still listed", n)
	}
	if got := eval(`document.getElementById('notice-text').textContent + ' | ' + document.getElementById('notice-code').textContent`); !strings.Contains(got, "Google did not answer") ||
		!strings.Contains(got, "| upstream_unavailable · HTTP 503") {
		t.Errorf("failed search notice %q: want plain words, then the code in small print", got)
	}
	step("search works again", chromedp.Click(chromedp.ID("search")))
	waitState("listed after the fault", "listed")

	// 4. The user removes the app at Google: the next list (the search in
	// the box, so from Gmail) answers 401 reauthorization_required and the
	// page offers "Reconnect".
	if !s.Sandbox.Revoke(email) {
		t.Fatal("sandbox revoke: unknown user")
	}
	step("refresh after revoke", chromedp.Click(chromedp.ID("refresh")))
	waitState("reconnect offered", "reauth")
	step("reconnect visible", chromedp.WaitVisible(chromedp.ID("reconnect")))
	if c, _ := st.GetCredential(context.Background(), sandbox.SubFor(email)); c == nil || c.Status != store.StatusRevoked {
		t.Errorf("after revoke: stored credential %+v, want status revoked", c)
	}

	// 5. Reconnect: a fresh authorization with the page's own state; the
	// search is kept and lists again.
	step("reconnect", chromedp.Click(chromedp.ID("reconnect")))
	waitState("list after reconnect", "listed")
	if len(rows()) == 0 {
		t.Errorf("after reconnect: no messages listed")
	}
	if c, _ := st.GetCredential(context.Background(), sandbox.SubFor(email)); c == nil || c.Status != store.StatusActive {
		t.Errorf("after reconnect: stored credential %+v, want status active", c)
	}

	// 6. Disconnect: DELETE /authorize, back to "Connect Gmail", nothing stored.
	step("disconnect", chromedp.Click(chromedp.ID("disconnect")))
	waitState("signed out", "signed-out")
	step("connect offered again", chromedp.WaitVisible(chromedp.ID("connect")))
	if _, err := st.GetCredential(context.Background(), sandbox.SubFor(email)); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("after disconnect: GetCredential error %v, want ErrNotFound", err)
	}
	if eval(`sessionStorage.getItem('gmailoauth.session') === null ? 'gone' : 'kept'`) != "gone" {
		t.Errorf("after disconnect the session is still in sessionStorage")
	}

	// 7. A misconfigured API (here a SESSION_TTL that does not parse): the
	// preflight and the error carry CORS headers, so the page shows what is
	// wrong in plain words with the code in small print, not a network error.
	bad := devtest.Start(t, devtest.Options{Demo: true, Env: map[string]string{"SESSION_TTL": "forever"}})
	step("open the misconfigured demo", chromedp.Navigate(bad.DemoURL+"/"), chromedp.WaitVisible(chromedp.ID("connect")),
		chromedp.Click(chromedp.ID("connect")))
	waitState("misconfigured shown", "error")
	if got := eval(`document.getElementById('notice-text').textContent + ' | ' + document.getElementById('notice-code').textContent`); !strings.Contains(got, "not set up correctly") ||
		!strings.Contains(got, "| misconfigured · HTTP 500") {
		t.Errorf("misconfigured API: the page says %q, want plain words and \"misconfigured · HTTP 500\" in small print", got)
	}
	screenshot(t, tab, "demo-misconfigured.png", desktopWidth)

	mu.Lock()
	defer mu.Unlock()
	for _, m := range console {
		text := m.Text
		if m.IsException() || strings.Contains(text, "Content Security Policy") || strings.Contains(text, "CORS") {
			t.Errorf("browser console: %s %s", m.Type, text)
		}
	}
	t.Logf("demo flow in Chromium: %v", time.Since(start).Round(time.Millisecond))
}

// Viewport widths of the screenshots: a laptop, and a 390 px phone.
const (
	desktopWidth = 1100
	phoneWidth   = 390
)

// phone checks the page at a 390 px phone's viewport: nothing is wider than
// the screen, so the page never scrolls sideways.
func phone(t *testing.T, tab context.Context, when string) {
	t.Helper()
	if err := chromedp.Do(tab, chromedp.EmulateViewport(phoneWidth, 844, chromedp.EmulateScale(2))); err != nil {
		t.Fatalf("phone viewport: %v", err)
	}
	v, err := chromedp.Run(tab, chromedp.Evaluate[[]int64](`[document.documentElement.scrollWidth, window.innerWidth]`))
	if err != nil {
		t.Fatalf("page width: %v", err)
	}
	if v[1] != phoneWidth || v[0] > v[1] {
		t.Errorf("%s at %d px: the page is %d px wide in a %d px window, want no horizontal scroll", when, phoneWidth, v[0], v[1])
	}
}

// screenshot saves a full-page PNG, width px wide, to $SCREENSHOT_DIR (or
// the test's temp dir).
func screenshot(t *testing.T, tab context.Context, name string, width int64) {
	t.Helper()
	if err := chromedp.Do(tab, chromedp.EmulateViewport(width, 600)); err != nil {
		t.Fatalf("viewport: %v", err)
	}
	// Size the viewport to the whole page, so the picture has every row.
	h, err := chromedp.Run(tab, chromedp.Evaluate[int64](`Math.ceil(document.documentElement.scrollHeight)`))
	if err != nil {
		t.Fatalf("page height: %v", err)
	}
	if err := chromedp.Do(tab, chromedp.EmulateViewport(width, max(h, 600))); err != nil {
		t.Fatalf("viewport: %v", err)
	}
	png, err := chromedp.Run(tab, chromedp.FullScreenshot(100)) // 100 = PNG
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	dir := os.Getenv("SCREENSHOT_DIR")
	if dir == "" {
		dir = t.TempDir()
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatalf("screenshot dir: %v", err)
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatalf("write screenshot: %v", err)
	}
	t.Logf("screenshot: %s", path)
}

// pageState describes the page for failure messages.
func pageState(tab context.Context) string {
	ctx, cancel := context.WithTimeout(tab, 3*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[string](
		`location.href + ' state=' + document.body.dataset.state + ' notice=' + document.getElementById('notice').textContent`))
	if err != nil {
		return "(unavailable: " + err.Error() + ")"
	}
	return v
}

func jsString(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'"
}
