package demo_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
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
// against the sandbox: connect, list, next page, search, revoke at "Google",
// Reconnect, disconnect. The page is served on its own origin and calls the
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
			`[...document.querySelectorAll('#messages tbody tr')].map(tr => tr.dataset.id + '|' + tr.cells[1].firstChild.textContent)`))
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
	step("connect", chromedp.Click(chromedp.ID("connect")))
	waitState("list after connect", "listed")
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
	screenshot(t, tab, "demo-messages.png")

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
	found := rows()
	if len(found) == 0 {
		t.Fatalf("search subject:receipt listed nothing")
	}
	for _, r := range found {
		if !strings.Contains(strings.ToLower(r), "receipt") {
			t.Errorf("search subject:receipt listed %q", r)
		}
	}

	// 4. The user removes the app at Google: the next list answers 401
	// reauthorization_required and the page offers "Reconnect".
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

// screenshot saves a full-page PNG to $SCREENSHOT_DIR (or the test's temp dir).
func screenshot(t *testing.T, tab context.Context, name string) {
	t.Helper()
	// Size the viewport to the whole page, so the picture has every row.
	h, err := chromedp.Run(tab, chromedp.Evaluate[int64](`Math.ceil(document.documentElement.scrollHeight)`))
	if err != nil {
		t.Fatalf("page height: %v", err)
	}
	if err := chromedp.Do(tab, chromedp.EmulateViewport(1100, max(h, 600))); err != nil {
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
