package demo_test

import (
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"example.com/gmailoauth/internal/local/devtest"
	"example.com/gmailoauth/internal/store/memstore"
)

// TestDemoShowsNewMailWithoutAReload: connected on the demo page, new mail
// in the sandbox reaches the page through push (Gmail's notification →
// GmailPush → the mirror → the events to the app, read at /dev/events): the
// event shows in the events panel and the message appears at the top of the
// list, and the page was not reloaded.
func TestDemoShowsNewMailWithoutAReload(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test: not in -short mode")
	}
	exe := findChromium(t)
	s := devtest.Start(t, devtest.Options{Store: memstore.New(), Demo: true})
	const email = "alice@example.com"
	if err := s.Sandbox.SetMailboxSize(email, 30); err != nil {
		t.Fatal(err)
	}
	tab := browser(t, exe)
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

	step("open the demo", chromedp.Navigate(s.DemoURL+"/"), chromedp.WaitVisible(chromedp.ID("connect")))
	step("connect", chromedp.Click(chromedp.ID("connect")),
		chromedp.WaitReady(chromedp.CSS(`body[data-state="listed"]:not(.busy)`)))
	// The first sync runs in the background (GmailPush); its events arrive.
	step("the first sync's events", chromedp.WaitVisible(chromedp.ID("events")),
		chromedp.Poll[chromedp.Void](`document.querySelector('#event-list li[data-type="message.added"]') !== null`))

	// Mark this document: a reload would lose the mark.
	step("mark the page", chromedp.Evaluate[chromedp.Void](`window.__notReloaded = true`))
	ids := s.Sandbox.AddMessages(email, 1)
	step("the new message appears in the list",
		chromedp.Poll[chromedp.Void](`document.querySelector('#messages li[data-id="`+ids[0]+`"]') !== null`), // a hex id
		chromedp.WaitReady(chromedp.CSS(`body[data-state="listed"]:not(.busy)`)))
	if got := eval(`document.querySelector('#messages li').dataset.id`); got != ids[0] {
		t.Errorf("first row is %s, want the new message %s at the top", got, ids[0])
	}
	if got := eval(`String(window.__notReloaded === true)`); got != "true" {
		t.Error("the page was reloaded; want the new message shown in place")
	}
	got := eval(`[...document.querySelectorAll('#event-list li')].map(li => li.dataset.type + ' ' + li.querySelector('.what').textContent).join('\n')`)
	if first := strings.SplitN(got, "\n", 2)[0]; !strings.HasPrefix(first, "message.added ") {
		t.Errorf("newest event shown: %q, want the new message's message.added\nevents:\n%s", first, got)
	}
	// Each event is shown once, however often it was delivered.
	if dup := eval(`(() => { const ids = [...document.querySelectorAll('#event-list li')].map(li => li.dataset.eventId); return String(ids.length - new Set(ids).size); })()`); dup != "0" {
		t.Errorf("%s events shown twice", dup)
	}
	screenshot(t, tab, "demo-push.png", desktopWidth)
}
