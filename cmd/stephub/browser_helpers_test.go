package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
)

// chromiumPath is Debian's Chromium, which .ci/run installs.
const chromiumPath = "/usr/bin/chromium"

// Waits of the browser tests. Each is an upper bound of a poll, never a
// pause: a passing test waits only as long as the page needs.
const (
	// pageWait bounds one wait for the page to reach a state.
	pageWait = 20 * time.Second
	// pollEvery is how often a wait looks at the page again.
	pollEvery = 25 * time.Millisecond
)

// screenshotDir is where the tests save what the pages looked like: the
// repository's testoutput/, which git ignores.
var screenshotDir = filepath.Join("..", "..", "testoutput")

// browser is one headless Chromium with a fresh profile. Its tabs share the
// profile, as the tabs of one browser do: localStorage, and so the token,
// and the shared worker that holds the streams.
//
// Console errors and warnings, uncaught exceptions and error entries of the
// browser log fail the test when it ends, unless a tolerate pattern matches
// them (a test that provokes a 401 expects Chromium to log the failed load).
type browser struct {
	t         *testing.T
	ctx       context.Context // the first tab's; newTab opens the others from it
	firstUsed bool
	console   sync.WaitGroup

	mu        sync.Mutex
	problems  []string
	tolerated []*regexp.Regexp
}

// newBrowser starts Chromium for the test, or skips the test when there is
// none outside CI. It stops when the test ends.
func newBrowser(t *testing.T) *browser {
	t.Helper()
	// Missing, the set-up is broken: a skipped browser test would pass
	// while testing half of what ships.
	if _, err := os.Stat(chromiumPath); err != nil {
		t.Fatalf("%s is missing (apt-get install chromium; .ci/run does): %v", chromiumPath, err)
	}
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(chromiumPath),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
	)
	ctx, cancel := chromedp.NewContext(allocCtx)
	b := &browser{t: t, ctx: ctx}
	// Cleanups run last-in first-out: the console is checked, then the
	// browser stops, then the console readers are waited for.
	t.Cleanup(b.console.Wait)
	t.Cleanup(func() {
		cancel()
		cancelAlloc()
	})
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("starting Chromium: %v", err)
	}
	t.Cleanup(b.checkConsole)
	return b
}

// tolerate lets console entries matching pattern pass; the test expects
// them.
func (b *browser) tolerate(pattern string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.tolerated = append(b.tolerated, regexp.MustCompile(pattern))
}

// checkConsole fails the test for every console problem seen so far.
func (b *browser) checkConsole() {
	b.t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, p := range b.problems {
		b.t.Errorf("console: %s", p)
	}
	b.problems = nil
}

// record files one console message of a tab.
func (b *browser) record(tab string, m chromedp.ConsoleMessage) {
	// Errors and warnings of the page's own code (calls of the console API
	// and exceptions have no Source) and error entries of the browser log.
	ours := m.Source == ""
	bad := m.IsException() || m.Type == chromedp.ConsoleError || m.Type == "assert" || ours && m.Type == chromedp.ConsoleWarning
	if !bad {
		if m.Type == chromedp.ConsoleWarning {
			b.t.Logf("%s: browser warning: %s", tab, m.Text)
		}
		return
	}
	line := fmt.Sprintf("%s: %s (%s:%d)", tab, m, m.URL, m.Line+1)
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, re := range b.tolerated {
		if re.MatchString(m.Text + " " + m.URL) {
			b.t.Logf("expected %s", line)
			return
		}
	}
	b.problems = append(b.problems, line)
}

// tab is one tab of a browser, 1280×900 unless resized.
type tab struct {
	t    *testing.T
	name string
	ctx  context.Context
}

// newTab opens a tab; the first call takes the tab Chromium starts with.
func (b *browser) newTab(name string) *tab {
	b.t.Helper()
	ctx := b.ctx
	if b.firstUsed {
		ctx = b.tabContext()
	}
	b.firstUsed = true
	tb, err := b.setUpTab(ctx, name, "")
	if err != nil {
		b.t.Fatal(err)
	}
	return tb
}

// newTabs opens a tab on url for each name, all at once, as a person
// middle-clicking a link ten times would.
func (b *browser) newTabs(url string, names ...string) []*tab {
	b.t.Helper()
	tabs := make([]*tab, len(names))
	errs := make([]error, len(names))
	var wg sync.WaitGroup
	for i, name := range names {
		ctx := b.tabContext()
		wg.Go(func() { tabs[i], errs[i] = b.setUpTab(ctx, name, url) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		b.t.Fatal(err)
	}
	return tabs
}

// tabContext makes the context of a new tab, closed when the test ends.
func (b *browser) tabContext() context.Context {
	ctx, cancel := chromedp.NewContext(b.ctx)
	b.t.Cleanup(cancel)
	return ctx
}

// setUpTab opens the tab of ctx, records its console, sizes it and, unless
// url is empty, loads url. It is safe to call from several goroutines with
// different contexts.
func (b *browser) setUpTab(ctx context.Context, name, url string) (*tab, error) {
	if err := chromedp.Do(ctx); err != nil {
		return nil, fmt.Errorf("opening %s: %w", name, err)
	}
	messages := chromedp.Console(ctx)
	b.console.Add(1)
	go func() {
		defer b.console.Done()
		for m, err := range messages {
			if err != nil {
				return // the tab closed
			}
			b.record(name, m)
		}
	}()
	actions := []chromedp.Action[chromedp.Void]{chromedp.EmulateViewport(1280, 900)}
	if url != "" {
		actions = append(actions, chromedp.Navigate(url))
	}
	tctx, cancel := context.WithTimeout(ctx, pageWait)
	defer cancel()
	if err := chromedp.Do(tctx, actions...); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return &tab{t: b.t, name: name, ctx: ctx}, nil
}

// do runs actions in the tab, failing the test if they fail or take longer
// than pageWait.
func (tb *tab) do(actions ...chromedp.Action[chromedp.Void]) {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, pageWait)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		tb.t.Fatalf("%s: %v\n%s", tb.name, err, tb.state())
	}
}

// open loads a page of the server in the tab.
func (tb *tab) open(url string) {
	tb.t.Helper()
	tb.do(chromedp.Navigate(url))
}

// eval evaluates a JavaScript expression in the page and returns its value.
func eval[T any](tb *tab, js string) T {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, pageWait)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](js, chromedp.EvalAwaitPromise))
	if err != nil {
		tb.t.Fatalf("%s: evaluating %s: %v", tb.name, js, err)
	}
	return v
}

// wait polls the page until the JavaScript expression is truthy, and fails
// the test, showing what the page shows, if that takes longer than
// pageWait.
func (tb *tab) wait(what, js string) {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, pageWait+time.Second)
	defer cancel()
	_, err := chromedp.Run(ctx, chromedp.Poll[chromedp.Void](js,
		chromedp.WithPollingInterval(pollEvery), chromedp.WithPollingTimeout(pageWait)))
	if err != nil {
		tb.t.Fatalf("%s: waiting for %s (%s): %v\n%s", tb.name, what, js, err, tb.state())
	}
}

// state describes what the dashboard shows, for failure messages.
func (tb *tab) state() string {
	ctx, cancel := context.WithTimeout(tb.ctx, 2*time.Second)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Evaluate[string](`(() => {
		const text = (id) => document.getElementById(id)?.textContent.trim() ?? "(none)";
		return [
			"url: " + location.href,
			"connection: " + text("conn-label") + " [" + document.getElementById("conn")?.dataset.state + "]",
			"current: " + text("current-step"),
			"history: " + [...document.querySelectorAll("#history li")].map((li) => li.textContent).join(" | "),
			"notice: " + text("notice"),
			"alerts: " + [...document.querySelectorAll(".alert, .field-error")].map((n) => n.textContent).filter(Boolean).join(" | "),
			"credits: " + text("credits"),
		].join("\n");
	})()`))
	if err != nil {
		return "(page state unavailable: " + err.Error() + ")"
	}
	return s
}

// text returns the trimmed text of the element with the id.
func (tb *tab) text(id string) string {
	tb.t.Helper()
	return eval[string](tb, fmt.Sprintf(`document.getElementById(%q).textContent.trim()`, id))
}

// history returns the lines of the step history box.
func (tb *tab) history() []string {
	tb.t.Helper()
	return eval[[]string](tb, `[...document.querySelectorAll("#history li")].map((li) => li.textContent)`)
}

// historyIDs returns the event ids of the history's lines.
func (tb *tab) historyIDs() []int {
	tb.t.Helper()
	return eval[[]int](tb, `[...document.querySelectorAll("#history li")].map((li) => Number(li.dataset.id))`)
}

// credits returns the balance the page shows.
func (tb *tab) credits() int {
	tb.t.Helper()
	s := strings.NewReplacer(",", "", ".", "", " ", "", "\u202f", "", "\u00a0", "").Replace(tb.text("credits"))
	n, err := strconv.Atoi(s)
	if err != nil {
		tb.t.Fatalf("%s: credits %q are not a number", tb.name, tb.text("credits"))
	}
	return n
}

// screenshot saves the page as testoutput/NAME.png.
func (tb *tab) screenshot(name string) {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, pageWait)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		tb.t.Fatalf("%s: screenshot: %v", tb.name, err)
	}
	if err := os.MkdirAll(screenshotDir, 0o755); err != nil {
		tb.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(screenshotDir, name+".png"), png, 0o644); err != nil {
		tb.t.Fatal(err)
	}
}

// connState is the watch panel's connection state (the VideoFeed state).
const connState = `document.getElementById("conn").dataset.state`

// finished is true once the watch panel shows a job's outcome.
const finished = `!document.getElementById("notice").hidden`

// cookie returns the browser's cookie name for the tab's page, as the
// browser keeps it (HttpOnly ones too), or nil.
func (tb *tab) cookie(name string) *network.Cookie {
	tb.t.Helper()
	var cookies []*network.Cookie
	tb.do(chromedp.Func(func(ctx context.Context, tgt *chromedp.Target) error {
		res, err := cdp.Call(ctx, tgt, network.GetCookies, network.GetCookiesParams{})
		cookies = res.Cookies
		return err
	}))
	i := slices.IndexFunc(cookies, func(c *network.Cookie) bool { return c.Name == name })
	if i < 0 {
		return nil
	}
	return cookies[i]
}

// requestLog is a reverse proxy in front of a test server that notes the
// method and address of every request passing through it: a browser
// pointed at it shows what it asks for, its shared worker included, whose
// requests no tab's DevTools session sees.
type requestLog struct {
	URL string

	mu       sync.Mutex
	requests []string // "GET /path?query"
}

// recordRequests starts a requestLog in front of s; it stops when the test
// ends.
func recordRequests(t *testing.T, s *testServer) *requestLog {
	t.Helper()
	target, err := url.Parse(s.URL)
	if err != nil {
		t.Fatal(err)
	}
	l := &requestLog{}
	tr := &http.Transport{}
	proxy := &httputil.ReverseProxy{
		Transport:     tr,
		FlushInterval: -1, // streams go through as they come
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(target)
			// The server checks a WebSocket's Origin against its Host.
			r.Out.Host = r.In.Host
			l.mu.Lock()
			defer l.mu.Unlock()
			l.requests = append(l.requests, r.In.Method+" "+r.In.URL.RequestURI())
		},
	}
	srv := httptest.NewServer(proxy)
	t.Cleanup(func() {
		srv.CloseClientConnections()
		srv.Close()
		tr.CloseIdleConnections()
	})
	l.URL = srv.URL
	return l
}

// all returns the requests so far.
func (l *requestLog) all() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.requests)
}
