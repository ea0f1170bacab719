package server_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	cdplog "github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// The console's browser tests drive Debian's chromium (headless) with
// chromedp. CI installs chromium (.ci/run) and sets CI, so there a missing
// browser fails the tests; elsewhere they skip, saying how to run them.
// Screenshots of each page, at desktop width and at 360 px, go to
// $TRAIL_CONSOLE_SHOTS when set (kept for review), else to the test's
// temporary directory (removed after the test).

// chromium starts a headless browser for the test.
func chromium(t *testing.T) context.Context {
	t.Helper()
	path := ""
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			path = p
			break
		}
	}
	if path == "" {
		if os.Getenv("CI") != "" {
			t.Fatal("chromium is not installed: CI must install it (apt-get install chromium, in .ci/run)")
		}
		t.Skip("chromium is not installed (apt-get install chromium): browser tests skipped")
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(path), chromedp.NoSandbox,
		chromedp.WindowSize(1280, 900), chromedp.Flag("disable-dev-shm-usage", true))
	actx, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancel)
	bctx, bcancel := chromedp.NewContext(actx)
	t.Cleanup(bcancel)
	if err := chromedp.Do(bctx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	return bctx
}

// tab is one browser tab in a browser context of its own (cookies and
// local storage apart from other tabs'). It collects console errors,
// uncaught exceptions and console documents without the contract's CSP.
type tab struct {
	t     *testing.T
	ctx   context.Context
	base  string
	mu    sync.Mutex
	errs  []string
	allow []string // expected log entries (a page answered 403 on purpose)
	shots string   // where screenshots go when TRAIL_CONSOLE_SHOTS is not set
}

func (e *uiEnv) tab(t *testing.T, browser context.Context) *tab {
	t.Helper()
	ctx, cancel := chromedp.NewContext(browser, chromedp.WithNewBrowserContext())
	t.Cleanup(cancel)
	tb := &tab{t: t, ctx: ctx, base: e.url}
	if err := chromedp.Listen(ctx, tb.event); err != nil {
		t.Fatalf("browser: %v", err)
	}
	tb.run(chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
		if _, err := chromedp.Call(ctx, cdplog.Enable, cdp.Empty{}); err != nil {
			return err
		}
		_, err := chromedp.Call(ctx, network.Enable, network.EnableParams{})
		return err
	}))
	return tb
}

// event notes what the page should not have done.
func (tb *tab) event(ev any) {
	switch ev := ev.(type) {
	case *runtime.EventExceptionThrown:
		d := ev.ExceptionDetails
		desc := d.Text
		if d.Exception != nil {
			desc += " " + d.Exception.Description
		}
		tb.problem(fmt.Sprintf("uncaught exception: %s at %s:%d", desc, d.URL, d.LineNumber))
	case *runtime.EventConsoleAPICalled:
		if ev.Type == runtime.ConsoleAPICalledTypeError || ev.Type == runtime.ConsoleAPICalledTypeWarning {
			var args []string
			for _, a := range ev.Args {
				args = append(args, string(a.Value)+a.Description)
			}
			tb.problem(fmt.Sprintf("console.%s: %s", ev.Type, strings.Join(args, " ")))
		}
	case *cdplog.EventEntryAdded:
		if ev.Entry.Level == cdplog.EntryLevelError || ev.Entry.Level == cdplog.EntryLevelWarning {
			tb.problem(fmt.Sprintf("%s %s: %s %s", ev.Entry.Source, ev.Entry.Level, ev.Entry.Text, ev.Entry.URL))
		}
	case *network.EventResponseReceived:
		if ev.Type == network.ResourceTypeDocument && strings.Contains(ev.Response.URL, "/ui/") {
			if got, _ := ev.Response.Headers["Content-Security-Policy"].(string); got != consoleCSP {
				tb.problem(fmt.Sprintf("%s came with CSP %q", ev.Response.URL, got))
			}
		}
	}
}

func (tb *tab) problem(s string) {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	for _, a := range tb.allow {
		if strings.Contains(s, a) {
			return
		}
	}
	tb.errs = append(tb.errs, s)
}

// expect lets log entries containing s pass (a page answered with an error
// status on purpose).
func (tb *tab) expect(s string) {
	tb.mu.Lock()
	tb.allow = append(tb.allow, s)
	tb.mu.Unlock()
}

// clean fails the test on any console error seen so far.
func (tb *tab) clean() {
	tb.t.Helper()
	tb.mu.Lock()
	defer tb.mu.Unlock()
	for _, e := range tb.errs {
		tb.t.Errorf("browser: %s", e)
	}
	tb.errs = nil
}

func (tb *tab) run(steps ...chromedp.Action[chromedp.Void]) {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		tb.t.Fatalf("browser: %v", err)
	}
}

// value runs an action that returns a value.
func value[T any](tb *tab, a chromedp.Action[T]) T {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, 30*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		tb.t.Fatalf("browser: %v", err)
	}
	return v
}

// eval evaluates a JavaScript expression in the page (awaiting a promise).
func eval[T any](tb *tab, expr string) T {
	tb.t.Helper()
	return value(tb, chromedp.Evaluate[T](expr, func(p *runtime.EvaluateParams) { p.AwaitPromise = new(true) }))
}

// open loads a console page and checks what every page must have.
func (tb *tab) open(path string) {
	tb.t.Helper()
	tb.run(chromedp.Navigate(tb.base+path), chromedp.WaitReady(chromedp.CSS("body")))
	tb.checkPage()
}

// checkPage checks the page shown: a title, a main landmark and an h1, a
// skip link, a label for every field, alt text on images.
func (tb *tab) checkPage() {
	tb.t.Helper()
	problems := eval[[]string](tb, `(() => {
		const p = [];
		if (!document.title.trim()) p.push("no title");
		if (!document.querySelector("main#main")) p.push("no main landmark");
		if (!document.querySelector("h1")) p.push("no h1");
		if (!document.querySelector("a.skip[href='#main']")) p.push("no skip link");
		if (document.documentElement.lang !== "en") p.push("no lang");
		document.querySelectorAll("input:not([type=hidden]), select, textarea").forEach(el => {
			if (!(el.labels && el.labels.length) && !el.getAttribute("aria-label")) p.push("field without a label: " + el.outerHTML.slice(0, 80));
		});
		document.querySelectorAll("img").forEach(img => { if (!img.hasAttribute("alt")) p.push("image without alt"); });
		return p;
	})()`)
	for _, p := range problems {
		tb.t.Errorf("page %s: %s", tb.location(), p)
	}
}

func (tb *tab) text(sel string) string {
	tb.t.Helper()
	return value(tb, chromedp.Text(chromedp.CSS(sel)))
}

func (tb *tab) location() string {
	tb.t.Helper()
	return strings.TrimPrefix(value(tb, chromedp.Location()), tb.base)
}

// signIn signs in with a token through the form, as a person would.
func (tb *tab) signIn(token string) {
	tb.t.Helper()
	tb.open("/ui/signin")
	tb.run(chromedp.SendKeys(chromedp.ID("token"), token),
		chromedp.Click(chromedp.CSS(`form[action="/ui/signin"] button[type=submit]`)),
		chromedp.WaitVisible(chromedp.CSS(`nav[aria-label="Main"]`)))
	tb.checkPage()
}

// shot saves a screenshot of the page at desktop width and at 360 px.
func (tb *tab) shot(name string) {
	tb.t.Helper()
	dir := os.Getenv("TRAIL_CONSOLE_SHOTS")
	if dir == "" {
		if tb.shots == "" {
			tb.shots = tb.t.TempDir()
		}
		dir = tb.shots
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		tb.t.Fatal(err)
	}
	for _, v := range []struct {
		suffix string
		w, h   int64
	}{{"desktop", 1280, 900}, {"360", 360, 780}} {
		tb.run(chromedp.EmulateViewport(v.w, v.h), chromedp.Sleep(150*time.Millisecond))
		path := filepath.Join(dir, name+"-"+v.suffix+".png")
		if v.w == 360 {
			tb.fits(name, path)
		}
		buf := value(tb, chromedp.FullScreenshot(100))
		if err := os.WriteFile(path, buf, 0o644); err != nil {
			tb.t.Fatal(err)
		}
	}
	tb.run(chromedp.EmulateViewport(1280, 900))
}

// fits fails the test when the page, at the phone width it is shown at,
// scrolls sideways: the document must be no wider than the viewport (a
// block such as <pre> may scroll within itself). It names the widest
// elements that stick out.
func (tb *tab) fits(name, path string) {
	tb.t.Helper()
	type wide struct {
		Width int64    `json:"width"`
		Over  []string `json:"over"`
	}
	got := eval[wide](tb, `(() => {
		const vw = document.documentElement.clientWidth;
		const over = [];
		document.querySelectorAll("body *").forEach(el => {
			const r = el.getBoundingClientRect();
			if (r.right > vw + 0.5 && over.length < 8) {
				let d = el.tagName.toLowerCase();
				if (el.id) d += "#" + el.id;
				if (el.className && typeof el.className === "string") d += "." + el.className.trim().split(/\s+/).join(".");
				over.push(d + " (right " + Math.round(r.right) + ")");
			}
		});
		return {width: document.documentElement.scrollWidth, over};
	})()`)
	if got.Width > 360 {
		tb.t.Errorf("%s at 360 px scrolls sideways: the document is %d px wide (%s); sticking out: %s",
			name, got.Width, path, strings.Join(got.Over, ", "))
	}
}

// waitVerdict waits for the verification's result and returns it with its
// text.
func (tb *tab) waitVerdict() (result, text string) {
	tb.t.Helper()
	tb.run(chromedp.WaitVisible(chromedp.CSS(`#verify[data-result="pass"], #verify[data-result="fail"]`)))
	return value(tb, chromedp.AttributeValue(chromedp.CSS("#verify"), "data-result")).Value, tb.text("#verify-status")
}
