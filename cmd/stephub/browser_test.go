package main

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/stephub/stephub/internal/testdb"
)

// These tests use the dashboard as a person would, in Debian's headless
// Chromium, against the real server. They run on SQLite only: the server
// side of every path they take is tested on both databases elsewhere.

// signInLink returns the link serve printed on stdout in dev mode.
func signInLink(t *testing.T, s *testServer) string {
	t.Helper()
	m := regexp.MustCompile(`(?m)^Sign in: (\S+)$`).FindStringSubmatch(s.out.String())
	if m == nil {
		t.Fatalf("serve printed no sign-in link; stdout:\n%s", s.out.String())
	}
	return m[1]
}

// signIn opens path on the server with ?token=, which signs the browser in,
// and waits for the dashboard to show the user.
func signIn(tb *tab, s *testServer, path, token string) {
	tb.t.Helper()
	tb.open(s.URL + path + "?token=" + url.QueryEscape(token))
	tb.wait("the signed-in user", `!document.getElementById("account").hidden && /\d/.test(document.getElementById("credits").textContent)`)
}

// watchedVideo returns the id of the video the tab's address names.
func watchedVideo(tb *tab) int64 {
	tb.t.Helper()
	tb.wait("a watch page address", `/^\/videos\/\d+$/.test(location.pathname)`)
	id, err := strconv.ParseInt(strings.TrimPrefix(eval[string](tb, `location.pathname`), "/videos/"), 10, 64)
	if err != nil {
		tb.t.Fatal(err)
	}
	return id
}

// stepLine matches a line of the history box: "[n] message".
var stepLine = regexp.MustCompile(`^\[(\d+)\] (.+)$`)

// emoji matches a pictographic character, as every mock step message has.
var emoji = regexp.MustCompile(`\p{So}`)

// checkFullHistory fails unless lines are a whole mock job, one line per
// step [1]..[8], each with its emoji message, then "[✓] 🎉 Video ready!",
// and ids are 1..9.
func checkFullHistory(t *testing.T, who string, lines []string, ids []int) {
	t.Helper()
	if len(lines) != 9 {
		t.Fatalf("%s: history has %d lines; want 9:\n%s", who, len(lines), strings.Join(lines, "\n"))
	}
	for i, line := range lines[:8] {
		m := stepLine.FindStringSubmatch(line)
		if m == nil || m[1] != strconv.Itoa(i+1) || !emoji.MatchString(m[2]) {
			t.Errorf("%s: history line %d is %q; want \"[%d] <emoji> message\"", who, i+1, line, i+1)
		}
	}
	for i := range lines {
		if ids[i] != i+1 {
			t.Errorf("%s: history line %d has event id %d; want %d", who, i+1, ids[i], i+1)
		}
	}
	if lines[8] != "[✓] 🎉 Video ready!" {
		t.Errorf("%s: last line %q; want the completion, \"[✓] 🎉 Video ready!\"", who, lines[8])
	}
}

// gaugeWatch polls a transport's stephub_connections_active until stopped
// and keeps the highest value seen.
type gaugeWatch struct {
	stopped chan struct{}
	done    chan struct{}
	once    sync.Once
	mu      sync.Mutex
	max     int
	polls   int
	err     error
}

// watchGauge starts polling; it stops at the latest when the test ends.
func watchGauge(t *testing.T, s *testServer, transport string) *gaugeWatch {
	w := &gaugeWatch{stopped: make(chan struct{}), done: make(chan struct{})}
	t.Cleanup(w.halt)
	go func() {
		defer close(w.done)
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			n := 0
			fams, err := readMetrics(s)
			if err == nil {
				v, found := metricValue(fams, "stephub_connections_active", "transport="+transport)
				if !found {
					err = fmt.Errorf("no stephub_connections_active{transport=%q} in /metrics", transport)
				}
				n = int(v)
			}
			w.mu.Lock()
			w.polls++
			w.max = max(w.max, n)
			if err != nil && w.err == nil {
				w.err = err
			}
			w.mu.Unlock()
			select {
			case <-w.stopped:
				return
			case <-tick.C:
			}
		}
	}()
	return w
}

// halt ends the polling.
func (w *gaugeWatch) halt() {
	w.once.Do(func() { close(w.stopped) })
	<-w.done
}

// stop ends the polling and returns the highest value seen.
func (w *gaugeWatch) stop(t *testing.T) int {
	t.Helper()
	w.halt()
	if w.err != nil {
		t.Fatalf("polling /metrics: %v", w.err)
	}
	if w.polls < 10 {
		t.Fatalf("/metrics polled %d times; too few to mean anything", w.polls)
	}
	return w.max
}

// recordArrivals makes the page note when lines join the history and when
// the connection changes state, for checks after the fact.
const recordArrivals = `(() => {
	window.arrivals = [];
	window.states = [document.getElementById("conn").dataset.state];
	new MutationObserver(() => window.arrivals.push(performance.now()))
		.observe(document.getElementById("history"), {childList: true});
	new MutationObserver(() => window.states.push(document.getElementById("conn").dataset.state))
		.observe(document.getElementById("conn"), {attributes: true, attributeFilter: ["data-state"]});
	return true;
})()`

// TestDashboardGenerateAndWatch walks the guide's checklist: sign in with
// the link serve prints, generate through the form, watch the steps arrive
// (in a second tab too), and end with the video playing.
func TestDashboardGenerateAndWatch(t *testing.T) {
	b := newBrowser(t)
	// No JWT_SECRET: dev mode, in which serve prints a sign-in link.
	s := startServer(t, testdb.SQLite(t), map[string]string{"JWT_SECRET": "", "STEP_DELAY": "300ms"})
	link := signInLink(t, s)
	if !strings.HasPrefix(link, s.URL+"/?token=") {
		t.Fatalf("sign-in link %q; want %s/?token=…", link, s.URL)
	}
	u, err := url.Parse(link)
	if err != nil {
		t.Fatal(err)
	}
	token := u.Query().Get("token")
	if strings.Contains(s.logs.String(), token) {
		t.Error("the log holds the sign-in token; it belongs on stdout only")
	}

	// Signing in makes the token a cookie out of the page's reach, and
	// takes it out of the address bar.
	one := b.newTab("tab 1")
	one.open(link)
	one.wait("the signed-in user", `document.getElementById("user-name").textContent === "demo@example.com" && /\d/.test(document.getElementById("credits").textContent)`)
	if c := one.cookie("stephub_session"); c == nil || c.Value != token || !c.HTTPOnly {
		t.Errorf("session cookie %+v; want the link's token, HttpOnly", c)
	}
	if got := eval[string](one, `location.href`); got != s.URL+"/" {
		t.Errorf("address after signing in = %q; want %s/ without the token", got, s.URL)
	}
	before := one.credits()
	if before != 1000 {
		t.Errorf("credits shown = %d; want a new user's 1000", before)
	}
	one.screenshot("signed-in")

	// A prompt under 10 characters is refused before anything is sent.
	one.do(chromedp.SendKeys(chromedp.ID("prompt"), "  too short  "), chromedp.Click(chromedp.ID("generate-button")))
	one.wait("the prompt's error", `document.getElementById("prompt-error").textContent.includes("at least 10 characters")`)
	if resp, body := call(t, "GET", s.URL+"/api/v1/videos", token, nil, nil); !strings.Contains(string(body), `"videos":[]`) {
		t.Fatalf("after a too-short prompt the user has videos: %d %s", resp.StatusCode, body)
	}

	// A proper prompt, the pro model, the sunset trial image; Generate is
	// disabled while the request is in flight.
	one.do(
		chromedp.Evaluate[chromedp.Void](`document.getElementById("prompt").value = ""`),
		chromedp.SendKeys(chromedp.ID("prompt"), "A cat surfing a wave at sunset"),
		chromedp.Click(chromedp.CSS(`input[value="sora-2-pro"] + span`)),
		chromedp.Click(chromedp.CSS(`input[value="/static/trial-sunset.svg"] + img`)),
		chromedp.Evaluate[chromedp.Void](`(() => {
			const button = document.getElementById("generate-button");
			window.sawDisabled = false;
			new MutationObserver(() => { window.sawDisabled ||= button.disabled; }).observe(button, {attributes: true});
		})()`),
		chromedp.Evaluate[chromedp.Void](recordArrivals),
		chromedp.Click(chromedp.ID("generate-button")),
	)
	id := watchedVideo(one)
	if !eval[bool](one, `window.sawDisabled`) {
		t.Error("Generate was never disabled while its request was in flight")
	}

	// ● Connected, with the dot pulsing.
	one.wait("● Connected", connState+` === "open" && document.getElementById("conn-label").textContent === "Connected"`)
	if !eval[bool](one, `(() => {
		const dot = document.querySelector("#conn .dot");
		const running = dot.getAnimations().some((a) => a.animationName === "pulse" && a.playState === "running");
		return getComputedStyle(dot).animationName === "pulse" && running;
	})()`) {
		t.Error("the connected dot does not pulse")
	}

	// Mid-job: the current step on top, with its emoji, matching the
	// newest history line; the progress bar at that step's percent; the
	// time remaining as a duration or "—". Then a second tab on the video.
	one.wait("four steps", `document.querySelectorAll("#history li").length >= 4`)
	one.screenshot("streaming")
	mid := eval[map[string]any](one, `(() => {
		const lines = [...document.querySelectorAll("#history li")];
		const last = lines.at(-1);
		const current = document.querySelector("#current-step .current-message");
		return {
			current: current.textContent,
			last: last.textContent,
			step: Number(last.dataset.step),
			progress: Number(document.getElementById("progress").getAttribute("aria-valuenow")),
			percent: document.getElementById("percent").textContent,
			eta: document.getElementById("eta").textContent,
			above: current.getBoundingClientRect().bottom <= document.getElementById("history").getBoundingClientRect().top,
			state: document.getElementById("conn").dataset.state,
		};
	})()`)
	if last, current := mid["last"].(string), mid["current"].(string); !strings.HasSuffix(last, "] "+current) || !emoji.MatchString(current) {
		t.Errorf("current step %q does not match the newest history line %q, or has no emoji", current, last)
	}
	if mid["above"] != true {
		t.Error("the current step is not above the history")
	}
	if step := int(mid["step"].(float64)); mid["state"] == "open" && int(mid["progress"].(float64)) != 100*step/9 {
		t.Errorf("progress %v at step %d; want %d", mid["progress"], step, 100*step/9)
	}
	if mid["percent"] != fmt.Sprintf("%v%%", mid["progress"]) {
		t.Errorf("percent text %q; want %v%%", mid["percent"], mid["progress"])
	}
	if eta := mid["eta"].(string); !regexp.MustCompile(`^(—|\d+ s|\d+ min \d\d s)$`).MatchString(eta) {
		t.Errorf("time remaining %q; want a duration or —", eta)
	}
	two := b.newTab("tab 2")
	two.open(fmt.Sprintf("%s/videos/%d", s.URL, id))

	// The end: a success notice, credits down by exactly 100, the video
	// playing, the stream closed.
	one.wait("the completion notice", finished)
	if got := one.text("notice"); !strings.Contains(got, "ready") || !eval[bool](one, `document.getElementById("notice").classList.contains("success")`) {
		t.Errorf("notice %q; want a success notice that the video is ready", got)
	}
	one.wait("credits down by 100", fmt.Sprintf(`document.getElementById("credits").textContent.replace(/\D/g, "") === "%d"`, before-100))
	one.wait("the video playing", `(() => {
		const v = document.getElementById("player");
		return !v.hidden && v.src.endsWith("/uploads/videos/mock-video.mp4") && v.readyState >= 2 && !v.paused && v.currentTime > 0;
	})()`)
	playedAt := eval[float64](one, `document.getElementById("player").currentTime`)
	one.wait("the video's time advancing", fmt.Sprintf(`document.getElementById("player").currentTime > %f`, playedAt+0.25))
	one.wait("the stream closed", connState+` === "closed"`)
	waitForMetrics(t, s, pageWait, []want{{"stephub_connections_active", []string{"transport=sse"}, 0}})

	// The steps arrived one by one, not all at the end.
	arrivals := eval[[]float64](one, `window.arrivals`)
	if span := arrivals[len(arrivals)-1] - arrivals[0]; len(arrivals) < 5 || span < 5*300*0.8 {
		t.Errorf("history grew in %d batches over %.0f ms; want the steps to arrive one by one, about 300 ms apart", len(arrivals), span)
	}

	// The history box: every step with its [n], the last 5 in view, the
	// earlier ones a scroll away.
	checkFullHistory(t, "tab 1", one.history(), one.historyIDs())
	visible := `(() => {
		const box = document.getElementById("history"), r = box.getBoundingClientRect();
		return [...box.children].filter((li) => {
			const q = li.getBoundingClientRect();
			return q.top >= r.top - 0.5 && q.bottom <= r.bottom + 0.5;
		}).map((li) => li.textContent.slice(0, 3));
	})()`
	if got := strings.Join(eval[[]string](one, visible), " "); got != "[5] [6] [7] [8] [✓]" {
		t.Errorf("history box shows %s; want the last five, [5] to [✓]", got)
	}
	one.do(chromedp.Evaluate[chromedp.Void](`document.getElementById("history").scrollTop = 0`))
	if got := eval[[]string](one, visible); len(got) != 5 || got[0] != "[1]" {
		t.Errorf("history box scrolled to the top shows %v; want [1] to [5]", got)
	}
	one.do(chromedp.Evaluate[chromedp.Void](`document.getElementById("history").scrollTop = 1e6`))

	// Screen readers hear the steps.
	if !eval[bool](one, `(() => { const a = document.getElementById("announcer"); return a.getAttribute("aria-live") === "polite" && a.textContent.includes("Video ready"); })()`) {
		t.Errorf("the live region does not announce the end: %q", one.text("announcer"))
	}

	// The form's choices reached the server, and the trial image is served.
	type choices struct {
		Model             string `json:"model"`
		ReferenceImageURL string `json:"reference_image_url"`
	}
	resp, body := call(t, "GET", fmt.Sprintf("%s/api/v1/videos/%d", s.URL, id), token, nil, nil)
	v := decodeJSON[choices](t, body)
	if resp.StatusCode != http.StatusOK || v.Model != "sora-2-pro" || v.ReferenceImageURL != s.URL+"/static/trial-sunset.svg" {
		t.Errorf("video: %d %s; want model sora-2-pro and the sunset trial image's URL", resp.StatusCode, body)
	}
	if resp, _ := call(t, "GET", v.ReferenceImageURL, "", nil, nil); resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "image/svg+xml" {
		t.Errorf("GET %s: %d %s; want 200 image/svg+xml", v.ReferenceImageURL, resp.StatusCode, resp.Header.Get("Content-Type"))
	}

	// The list shows the video, completed.
	one.wait("the list row completed", fmt.Sprintf(`document.querySelector('#video-list li[data-id="%d"]')?.dataset.status === "completed"`, id))
	one.screenshot("completed")

	// The second tab, opened mid-job, ends with the same history.
	two.wait("tab 2's completion", finished)
	checkFullHistory(t, "tab 2", two.history(), two.historyIDs())
	if a, b := strings.Join(one.history(), "\n"), strings.Join(two.history(), "\n"); a != b {
		t.Errorf("tabs differ:\ntab 1:\n%s\ntab 2:\n%s", a, b)
	}

	// At phone width nothing sticks out sideways.
	one.do(chromedp.EmulateViewport(375, 812, chromedp.EmulateMobile))
	one.wait("the phone layout", `document.documentElement.scrollWidth <= 375`)
	one.screenshot("phone")
}

// TestDashboardTenTabs opens ten tabs on one job: each shows the whole
// history, while the server never holds more than one stream for them. A
// worker (the test) posts the steps, so that the tabs join mid-job: they
// get the first steps from the tab-sharing owner and the rest live.
func TestDashboardTenTabs(t *testing.T) {
	b := newBrowser(t)
	s := startServer(t, testdb.SQLite(t), map[string]string{"PIPELINE": "external"})
	token := userToken(t, "tabs")
	streams := watchGauge(t, s, "sse")
	v := generate(t, s, token)

	tabs := []*tab{b.newTab("tab 1")}
	signIn(tabs[0], s, fmt.Sprintf("/videos/%d", v.ID), token)
	tabs[0].wait("● Connected", connState+` === "open"`)
	postWorkerJob(t, s, v.ID, 0, 1, 3)
	tabs[0].wait("three steps", `document.querySelectorAll("#history li").length === 3`)

	var names []string
	for i := 2; i <= 10; i++ {
		names = append(names, fmt.Sprintf("tab %d", i))
	}
	tabs = append(tabs, b.newTabs(fmt.Sprintf("%s/videos/%d", s.URL, v.ID), names...)...)
	for _, tb := range tabs {
		tb.wait("the first three steps, connected", connState+` === "open" && document.querySelectorAll("#history li").length === 3`)
	}
	postWorkerJob(t, s, v.ID, 0, 4, stephubSteps)

	var first string
	for _, tb := range tabs {
		tb.wait("the completion", finished)
		tb.wait("the stream closed", connState+` === "closed"`)
		checkFullHistory(t, tb.name, tb.history(), tb.historyIDs())
		got := strings.Join(tb.history(), "\n")
		if first == "" {
			first = got
		} else if got != first {
			t.Errorf("%s's history differs from tab 1's:\n%s", tb.name, got)
		}
	}
	tabs[9].screenshot("ten-tabs")
	waitForMetrics(t, s, pageWait, []want{{"stephub_connections_active", []string{"transport=sse"}, 0}})
	if most := streams.stop(t); most != 1 {
		t.Errorf("stephub_connections_active{transport=\"sse\"} peaked at %d with ten tabs on one video; want 1", most)
	}
	// One stream served the whole job: none was opened again to resume.
	if n, found := metricValue(scrapeMetrics(t, s), "stephub_reconnects_total", "transport=sse"); !found || n != 0 {
		t.Errorf("stephub_reconnects_total{transport=\"sse\"} = %v (found: %v); want 0", n, found)
	}
}

// TestDashboardCancel generates and cancels with the keyboard alone: Enter
// on an option picks it and generates nothing, the watch card takes the
// focus and comes first in the Tab order, no step follows the cancel, the
// focus stays in the card, and the credits come back.
func TestDashboardCancel(t *testing.T) {
	b := newBrowser(t)
	s := startServer(t, testdb.SQLite(t), map[string]string{"STEP_DELAY": "400ms"})
	token := userToken(t, "canceller")
	tb := b.newTab("tab")
	signIn(tb, s, "/", token)
	before := tb.credits()

	// Tab to a control, checking that every stop on the way shows where
	// the focus is.
	tabTo := func(selector string) {
		t.Helper()
		for range 30 {
			tb.do(chromedp.KeyEvent(kb.Tab))
			shown := eval[bool](tb, `(() => {
				const el = document.activeElement;
				const drawn = el.type === "radio" ? el.nextElementSibling : el;
				const style = getComputedStyle(drawn);
				return el.matches(":focus-visible") && style.outlineStyle !== "none" && parseFloat(style.outlineWidth) >= 2;
			})()`)
			if !shown {
				t.Errorf("focus on %s is not visible", eval[string](tb, `document.activeElement.outerHTML.slice(0, 80)`))
			}
			if eval[bool](tb, fmt.Sprintf(`document.activeElement.matches(%q)`, selector)) {
				return
			}
		}
		t.Fatalf("Tab never reached %s", selector)
	}
	tabTo("#prompt")
	tb.do(chromedp.KeyEvent("A lighthouse in a storm, waves crashing"))
	tabTo(`input[name="model"]`)
	if !eval[bool](tb, `document.getElementById("model-hint")?.checkVisibility() === true`) {
		t.Error("the model switch does not say that the arrow keys move it")
	}
	tb.do(chromedp.KeyEvent(kb.ArrowRight)) // sora-2-pro
	// Enter on an option must not submit the form and spend credits.
	tb.do(chromedp.KeyEvent(kb.Enter))
	tabTo(`input[name="reference"]`)
	tb.do(chromedp.KeyEvent(kb.ArrowRight), chromedp.KeyEvent(kb.ArrowRight)) // the second trial image
	tb.do(chromedp.KeyEvent(kb.ArrowLeft), chromedp.KeyEvent(kb.Enter))       // Enter picks the first
	if got := eval[string](tb, `document.querySelector('input[name="reference"]:checked').value`); got != "/static/trial-sunset.svg" {
		t.Errorf("after Enter on the first trial image the choice is %q; want it", got)
	}
	tabTo("#generate-button")
	tb.do(chromedp.KeyEvent(kb.Enter))
	id := watchedVideo(tb)
	if resp, body := call(t, "GET", s.URL+"/api/v1/videos", token, nil, nil); strings.Count(string(body), `"id":`) != 1 {
		t.Errorf("videos after Enter on two options and on Generate: %d %s; want one", resp.StatusCode, body)
	}
	tb.wait("the focus on the watch card", `document.activeElement === document.getElementById("watch")`)
	tb.wait("two steps", `document.querySelectorAll("#history li").length >= 2`)
	resp, body := call(t, "GET", fmt.Sprintf("%s/api/v1/videos/%d", s.URL, id), token, nil, nil)
	if got := decodeJSON[struct {
		Model string  `json:"model"`
		Ref   *string `json:"reference_image_url"`
	}](t, body); resp.StatusCode != http.StatusOK || got.Model != "sora-2-pro" || got.Ref == nil {
		t.Errorf("video made with the keyboard: %s; want sora-2-pro with a reference image", body)
	}

	// On a watch page, Tab reaches the watch card before the form.
	tb.do(chromedp.Evaluate[chromedp.Void](`document.querySelector(".skip-link").focus()`))
	tabTo(`#watch *, #prompt`)
	if eval[bool](tb, `document.activeElement.id === "prompt"`) {
		t.Error("on a watch page Tab reaches the prompt before the watch card")
	}
	tabTo("#cancel-button")
	tb.do(chromedp.KeyEvent(" ")) // Space presses a button
	tb.wait("the cancelled notice", finished+` && document.getElementById("notice").textContent.includes("Cancelled")`)
	// The Cancel button went with the job; the focus went to the outcome.
	tb.wait("the focus on the notice", `document.activeElement === document.getElementById("notice")`)
	tb.wait("the credits back", fmt.Sprintf(`document.getElementById("credits").textContent.replace(/\D/g, "") === "%d"`, before))
	if !eval[bool](tb, `document.getElementById("cancel-button").hidden`) {
		t.Error("Cancel is still offered after the job was cancelled")
	}
	tb.wait("the stream closed", connState+` === "closed"`)

	// The page shows exactly what the server stored, ending with the
	// cancel, and nothing comes after it.
	lines, ids := tb.history(), tb.historyIDs()
	stored := openStream(t, s, token, id, "").readAll(t)
	if len(stored) != len(lines) || stored[len(stored)-1].Status != "cancelled" {
		t.Fatalf("server has %d events ending %+v; the page shows %d lines:\n%s", len(stored), stored[len(stored)-1], len(lines), strings.Join(lines, "\n"))
	}
	for i, ev := range stored {
		// The cancel is not a step of its own: it is marked, not numbered.
		number := strconv.Itoa(ev.Step)
		if ev.Status == "cancelled" {
			number = "✕"
		}
		if want := fmt.Sprintf("[%s] %s", number, ev.Message); ids[i] != int(ev.ID) || lines[i] != want {
			t.Errorf("line %d: %q (id %d); want %s (id %d)", i, lines[i], ids[i], want, ev.ID)
		}
	}
	// Three step delays later, still nothing new.
	quiet := time.Now().Add(1200 * time.Millisecond)
	for time.Now().Before(quiet) {
		if n := len(tb.history()); n != len(lines) {
			t.Fatalf("a step appeared after the cancel: %d lines, then %d", len(lines), n)
		}
		time.Sleep(pollEvery)
	}
	tb.screenshot("cancelled")
}

// TestDashboardReconnectsAcrossRestart stops the server mid-job and starts
// it again on the same address: the page says it is reconnecting, then
// connected, and ends with every step once.
func TestDashboardReconnectsAcrossRestart(t *testing.T) {
	b := newBrowser(t)
	db := testdb.SQLite(t)
	env := map[string]string{"STEP_DELAY": "400ms"}
	s1 := startServer(t, db, env)
	token := userToken(t, "restarter")
	v := generate(t, s1, token)
	tb := b.newTab("tab")
	signIn(tb, s1, fmt.Sprintf("/videos/%d", v.ID), token)
	tb.do(chromedp.Evaluate[chromedp.Void](recordArrivals))
	tb.wait("● Connected", connState+` === "open"`)
	tb.wait("three steps", `document.querySelectorAll("#history li").length >= 3`)

	s1.Stop(t)
	tb.wait("Reconnecting…", connState+` === "reconnecting" && document.getElementById("conn-label").textContent === "Reconnecting…"`)
	tb.screenshot("reconnecting")
	env["ADDR"] = strings.TrimPrefix(s1.URL, "http://")
	s2 := startServer(t, db, env)

	tb.wait("the completion", finished)
	tb.wait("the stream closed", connState+` === "closed"`)
	checkFullHistory(t, "after the restart", tb.history(), tb.historyIDs())
	states := strings.Join(eval[[]string](tb, `window.states`), " ")
	if !regexp.MustCompile(`open .*reconnecting .*open .*closed$`).MatchString(states) {
		t.Errorf("connection states %s; want open, reconnecting, open again, closed", states)
	}
	tb.wait("credits after one job", `document.getElementById("credits").textContent.replace(/\D/g, "") === "900"`)
	tb.screenshot("reconnected")
	if got := credits(t, s2, token); got != 900 {
		t.Errorf("credits = %d; want 900", got)
	}
}

// TestDashboardSignInAndErrors covers what goes wrong: a bad token at sign
// in and mid-session, and the server's 422, 402 and 403 answers to Generate.
func TestDashboardSignInAndErrors(t *testing.T) {
	b := newBrowser(t)
	// Chromium logs each failed request; these are the ones provoked here.
	b.tolerate(`the server responded with a status of (401|402|403|422)`)
	s := startServer(t, testdb.SQLite(t), nil)
	token := userToken(t, "errors")
	tb := b.newTab("tab")

	tb.open(s.URL + "/?token=not-a-token")
	tb.wait("the sign-in form", `!document.getElementById("signin").hidden && document.getElementById("dashboard").hidden`)
	if got := tb.text("signin-message"); !strings.Contains(got, "not valid") {
		t.Errorf("sign-in message %q; want it to say the token is not valid", got)
	}
	if got := eval[string](tb, `location.search`); got != "" {
		t.Errorf("address keeps the query %q; want the token gone", got)
	}
	tb.screenshot("signed-out")

	// Pasting a good token signs in.
	tb.do(chromedp.SendKeys(chromedp.ID("token-input"), token), chromedp.Click(chromedp.CSS(`#signin-form button`)))
	tb.wait("the dashboard", `!document.getElementById("dashboard").hidden && document.getElementById("user-name").textContent === "errors@example.com"`)

	generateNow := func() {
		t.Helper()
		tb.do(chromedp.Evaluate[chromedp.Void](`document.getElementById("generate-error").textContent = ""`),
			chromedp.Click(chromedp.ID("generate-button")))
	}
	tb.do(chromedp.SendKeys(chromedp.ID("prompt"), "A red kite over the hills"))

	// A model the server does not know: its 422 shows next to the field.
	tb.do(chromedp.Evaluate[chromedp.Void](`document.querySelector('input[value="sora-2-pro"]').value = "sora-3"`),
		chromedp.Click(chromedp.CSS(`input[value="sora-3"] + span`)))
	generateNow()
	tb.wait("the model's error", `document.getElementById("model-error").textContent.includes("must be one of sora-2, sora-2-pro")`)
	tb.do(chromedp.Click(chromedp.CSS(`input[value="sora-2"] + span`)))

	admin := func(body map[string]any) {
		t.Helper()
		resp, data := call(t, "PUT", s.URL+"/api/v1/admin/users/errors", testAdminToken, body, nil)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("admin: %d %s", resp.StatusCode, data)
		}
	}
	admin(map[string]any{"credits": 50})
	generateNow()
	tb.wait("the credits message", `document.getElementById("generate-error").textContent.includes("Not enough credits: a video costs 100 and you have 50.")`)
	tb.wait("the balance updated", `document.getElementById("credits").textContent === "50"`)
	tb.screenshot("insufficient-credits")

	admin(map[string]any{"credits": 1000, "subscription_status": "inactive"})
	generateNow()
	tb.wait("the subscription message", `document.getElementById("generate-error").textContent.includes("subscription is inactive")`)

	// A session that stops working (here, its cookie gone) brings the
	// sign-in form back.
	tb.do(chromedp.Func(func(ctx context.Context, tgt *chromedp.Target) error {
		_, err := cdp.Call(ctx, tgt, network.DeleteCookies, network.DeleteCookiesParams{Name: "stephub_session", URL: s.URL})
		return err
	}))
	generateNow()
	tb.wait("the sign-in form again", `!document.getElementById("signin").hidden && document.getElementById("signin-message").textContent.includes("expired")`)
	tb.screenshot("error-401")
}

// TestDashboardWebSocket watches a job over the WebSocket transport, picked
// with the page's switch.
func TestDashboardWebSocket(t *testing.T) {
	// A worker (the test) posts the steps once the page is connected, so
	// the stream is live for the whole job however slow the browser.
	s := startServer(t, testdb.SQLite(t), map[string]string{"PIPELINE": "external"})
	token := userToken(t, "wsfan")
	v := generate(t, s, token)
	b := newBrowser(t)
	ws, sse := watchGauge(t, s, "ws"), watchGauge(t, s, "sse")
	tb := b.newTab("tab")
	signIn(tb, s, "/", token)
	tb.do(chromedp.Click(chromedp.CSS(`input[name="transport"][value="ws"] + span`)))
	if got := eval[string](tb, `localStorage.getItem("stephub_transport")`); got != "ws" {
		t.Fatalf("transport preference %q; want ws", got)
	}
	tb.open(fmt.Sprintf("%s/videos/%d", s.URL, v.ID))
	tb.wait("● Connected", connState+` === "open"`)
	waitForMetrics(t, s, pageWait, []want{{"stephub_connections_active", []string{"transport=ws"}, 1}})
	postWorkerJob(t, s, v.ID, 0, 1, stephubSteps)
	tb.wait("the completion", finished)
	tb.wait("the stream closed", connState+` === "closed"`)
	checkFullHistory(t, "over WebSocket", tb.history(), tb.historyIDs())
	if got := eval[string](tb, `document.getElementById("conn").title`); got != "Streaming over WebSocket" {
		t.Errorf("connection title %q; want Streaming over WebSocket", got)
	}
	waitForMetrics(t, s, pageWait, []want{{"stephub_connections_active", []string{"transport=ws"}, 0}})
	if most := ws.stop(t); most > 1 {
		t.Errorf("WebSocket streams peaked at %d; want 1", most)
	}
	if most := sse.stop(t); most != 0 {
		t.Errorf("SSE streams peaked at %d while the page used WebSocket; want 0", most)
	}
}

// TestDashboardWithoutSharedWorker hides SharedWorker, as some mobile
// browsers lack it: the tab falls back to a stream of its own.
func TestDashboardWithoutSharedWorker(t *testing.T) {
	b := newBrowser(t)
	s := startServer(t, testdb.SQLite(t), map[string]string{"STEP_DELAY": "100ms"})
	token := userToken(t, "plain")
	v := generate(t, s, token)
	tb := b.newTab("tab")
	tb.do(chromedp.Func(func(ctx context.Context, tgt *chromedp.Target) error {
		_, err := cdp.Call(ctx, tgt, page.AddScriptToEvaluateOnNewDocument,
			page.AddScriptToEvaluateOnNewDocumentParams{Source: "delete window.SharedWorker;"})
		return err
	}))
	signIn(tb, s, fmt.Sprintf("/videos/%d", v.ID), token)
	if eval[bool](tb, `"SharedWorker" in window`) {
		t.Fatal("SharedWorker is still there")
	}
	tb.wait("the completion", finished)
	checkFullHistory(t, "without SharedWorker", tb.history(), tb.historyIDs())
}

// TestDashboardGivesUpAndRetries makes the server refuse the page's stream
// (the user's one allowed stream is taken): the page gives up with an error
// and a Reconnect button, which works once the stream is free. The steps
// come from a worker, so the job waits for the test.
func TestDashboardGivesUpAndRetries(t *testing.T) {
	b := newBrowser(t)
	s := startServer(t, testdb.SQLite(t), map[string]string{"PIPELINE": "external", "MAX_STREAMS_PER_USER": "1"})
	token := userToken(t, "refused")
	v := generate(t, s, token)
	hog := openStream(t, s, token, v.ID, "")

	tb := b.newTab("tab")
	signIn(tb, s, fmt.Sprintf("/videos/%d", v.ID), token)
	tb.wait("the error state", connState+` === "error" && document.getElementById("conn-label").textContent === "Connection failed"`)
	if !eval[bool](tb, `!document.getElementById("retry-button").hidden && document.getElementById("watch-alert").textContent.includes("refused")`) {
		t.Errorf("no Reconnect button or no explanation in the error state:\n%s", tb.state())
	}
	tb.screenshot("gave-up")

	hog.Close()
	waitForMetrics(t, s, pageWait, []want{{"stephub_connections_active", []string{"transport=sse"}, 0}})
	tb.do(chromedp.Click(chromedp.ID("retry-button")))
	tb.wait("● Connected", connState+` === "open"`)
	postWorkerStep(t, s, v.ID, workerStep(1))
	tb.wait("the worker's step", `document.querySelector("#history li")?.textContent === "[1] 🔍 Validating request parameters..."`)
	postWorkerJob(t, s, v.ID, 0, 2, stephubSteps)
	tb.wait("the completion", finished)
	tb.wait("the stream closed", connState+` === "closed"`)
	checkFullHistory(t, "after Reconnect", tb.history(), tb.historyIDs())
}

// TestDashboardKeepsTokenOutOfURLs signs in with the link and watches two
// jobs to completion, over SSE and over WebSocket, through a proxy that
// notes every request the browser makes, its shared worker's included.
// Tickets last two seconds, so each stream expires mid-job and the page
// dials again with a fresh one: the history must still be whole and once.
// No URL the page opens may hold the user's token: streams go by ticket.
// The session cookie is HttpOnly and SameSite=Strict, no script sees it,
// and signing out clears it.
func TestDashboardKeepsTokenOutOfURLs(t *testing.T) {
	b := newBrowser(t)
	s := startServer(t, testdb.SQLite(t), map[string]string{"PIPELINE": "external", "TICKET_TTL": "2s"})
	proxy := recordRequests(t, s)
	token := userToken(t, "private")
	tb := b.newTab("tab")
	signIn(tb, &testServer{URL: proxy.URL}, "/", token)
	signedIn := len(proxy.all())

	for _, transport := range []string{"sse", "ws"} {
		v := generate(t, s, token)
		tb.do(chromedp.Evaluate[chromedp.Void](fmt.Sprintf(`localStorage.setItem("stephub_transport", %q)`, transport)))
		tb.open(fmt.Sprintf("%s/videos/%d", proxy.URL, v.ID))
		tb.wait("● Connected", connState+` === "open"`)
		postWorkerJob(t, s, v.ID, 400*time.Millisecond, 1, stephubSteps) // 3.2 s: past a ticket or two
		tb.wait("the completion", finished)
		tb.wait("the stream closed", connState+` === "closed"`)
		checkFullHistory(t, "over "+transport+" across expiring tickets", tb.history(), tb.historyIDs())

		path := fmt.Sprintf("/api/v1/videos/%d/%s?", v.ID, map[string]string{"sse": "stream", "ws": "ws"}[transport])
		streams := 0
		for _, r := range proxy.all() {
			if strings.Contains(r, path) {
				streams++
				if !strings.Contains(r, "ticket=") {
					t.Errorf("stream request %.60q…; want it opened with a ticket", r)
				}
			}
		}
		if streams < 2 {
			t.Errorf("%d %s streams for a job that outlasts its tickets; want one per ticket, at least 2", streams, transport)
		}
	}

	requests := proxy.all()
	if len(requests) <= signedIn || !strings.Contains(requests[0], "token=") {
		t.Fatalf("the proxy saw %d requests, the first %q; want the sign-in link, then the page's", len(requests), requests[0])
	}
	for _, r := range requests[1:] {
		if strings.Contains(r, token) || strings.Contains(r, "token=") {
			t.Errorf("the page opened %.60q…, which holds the user's token", r)
		}
	}
	c := tb.cookie("stephub_session")
	if c == nil || c.Value != token || !c.HTTPOnly || c.SameSite != network.CookieSameSiteStrict {
		t.Errorf("session cookie %+v; want the token, HttpOnly, SameSite=Strict", c)
	}
	if got := eval[string](tb, `document.cookie + " " + JSON.stringify(localStorage)`); strings.Contains(got, "stephub_session") || strings.Contains(got, token) {
		t.Errorf("the page's scripts see %q; want neither the cookie nor the token", got)
	}

	tb.do(chromedp.Click(chromedp.ID("sign-out")))
	tb.wait("the sign-in form", `!document.getElementById("signin").hidden && document.getElementById("signin-message").textContent.includes("signed out")`)
	if c := tb.cookie("stephub_session"); c != nil {
		t.Errorf("after signing out the browser keeps the cookie %+v", c)
	}
}

// TestDashboardLongPrompt watches a job with a prompt of 2000 characters:
// on a desktop and on a phone the step, the progress and the time remaining
// show without scrolling, and the whole prompt is a click away.
func TestDashboardLongPrompt(t *testing.T) {
	b := newBrowser(t)
	s := startServer(t, testdb.SQLite(t), map[string]string{"PIPELINE": "external"})
	token := userToken(t, "verbose")
	prompt := strings.Repeat("word after word ", 124) + "and so, the end."
	if n := len(prompt); n != 2000 {
		t.Fatalf("the prompt has %d characters; want 2000", n)
	}
	resp, body := call(t, "POST", s.URL+"/api/v1/videos/generate", token, map[string]any{"prompt": prompt, "model": "sora-2"}, nil)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("generate: %d %s", resp.StatusCode, body)
	}
	v := decodeJSON[video](t, body)
	postWorkerJob(t, s, v.ID, 0, 1, 4)

	tb := b.newTab("tab")
	signIn(tb, s, fmt.Sprintf("/videos/%d", v.ID), token)
	for _, size := range []struct {
		name          string
		width, height int64
		mobile        bool
	}{{"desktop", 1280, 900, false}, {"phone", 390, 844, true}} {
		if size.mobile {
			tb.do(chromedp.EmulateViewport(size.width, size.height, chromedp.EmulateMobile))
		} else {
			tb.do(chromedp.EmulateViewport(size.width, size.height))
		}
		tb.open(fmt.Sprintf("%s/videos/%d", s.URL, v.ID))
		tb.wait("step 4 and the prompt", `document.querySelectorAll("#history li").length === 4 && document.getElementById("watch-meta").textContent.includes("word after word")`)
		below := eval[[]string](tb, `["#current-step", "#progress", ".eta"].filter((sel) =>
			document.querySelector(sel).getBoundingClientRect().bottom > innerHeight)`)
		if len(below) > 0 {
			t.Errorf("%s: %v below the fold with a 2000-character prompt", size.name, below)
		}
		tb.screenshot("long-prompt-" + size.name)

		tb.do(chromedp.Click(chromedp.ID("prompt-toggle")))
		whole := eval[bool](tb, `(() => {
			const meta = document.getElementById("watch-meta");
			return meta.scrollHeight <= meta.clientHeight + 1 && meta.textContent.endsWith("and so, the end.”") &&
				document.getElementById("prompt-toggle").getAttribute("aria-expanded") === "true";
		})()`)
		if !whole {
			t.Errorf("%s: the toggle does not show the whole prompt", size.name)
		}
	}
}

// TestDashboardPhoneOpensFromList taps a video in "Your videos" on a
// 390 px phone: the watch card, which moves to the top, comes into view
// with the focus, showing the job's state.
func TestDashboardPhoneOpensFromList(t *testing.T) {
	b := newBrowser(t)
	s := startServer(t, testdb.SQLite(t), map[string]string{"PIPELINE": "external"})
	token := userToken(t, "phone")
	var ids []int64
	for range 4 {
		ids = append(ids, generate(t, s, token).ID)
	}
	postWorkerJob(t, s, ids[0], 0, 1, 3)

	tb := b.newTab("tab")
	tb.do(chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile))
	signIn(tb, s, "/", token)
	row := fmt.Sprintf(`#video-list li[data-id="%d"] a`, ids[0])
	tb.wait("the list", fmt.Sprintf(`document.querySelector(%q) !== null`, row))
	tb.do(chromedp.Evaluate[chromedp.Void](fmt.Sprintf(`document.querySelector(%q).scrollIntoView({block: "center"})`, row)))
	if eval[float64](tb, `scrollY`) < 300 {
		t.Fatalf("the list is in view without scrolling; the test needs it further down")
	}
	tb.do(chromedp.Click(chromedp.CSS(row)))
	tb.wait("three steps", `document.querySelectorAll("#history li").length === 3`)
	got := eval[map[string]any](tb, `(() => {
		const top = document.getElementById("watch").getBoundingClientRect().top;
		const step = document.getElementById("current-step").getBoundingClientRect();
		return {top, stepInView: step.top >= 0 && step.bottom <= innerHeight, focus: document.activeElement.id};
	})()`)
	if top := got["top"].(float64); top < -1 || top > 844/3 {
		t.Errorf("the watch card's top is at %.0f px after the tap; want it at the top of the screen", top)
	}
	if got["stepInView"] != true {
		t.Error("the current step is out of view after the tap")
	}
	if got["focus"] != "watch" {
		t.Errorf("the focus is on #%v after the tap; want the watch card", got["focus"])
	}
	if !eval[bool](tb, `!!(document.getElementById("watch").compareDocumentPosition(document.getElementById("generate")) & Node.DOCUMENT_POSITION_FOLLOWING)`) {
		t.Error("on a watch page the form comes before the watch card in the document (Tab and screen-reader order)")
	}
	// Every control is a fingertip high.
	small := eval[[]string](tb, `[...document.querySelectorAll("button, .segmented span, .actions a, .video-link")]
		.filter((el) => el.checkVisibility() && el.getBoundingClientRect().height < 44)
		.map((el) => (el.id || el.className || el.tagName) + ": " + Math.round(el.getBoundingClientRect().height) + " px")`)
	if len(small) > 0 {
		t.Errorf("tap targets under 44 px: %v", small)
	}
	tb.screenshot("phone-from-list")
}

// TestDashboardSessionExpiresAsJobEnds ends the session mid-job: when the
// job completes, the page asks for the new balance and learns that the
// session is gone. It asks for a new token without hiding the outcome and
// the player, and picks up where it was once signed in again.
func TestDashboardSessionExpiresAsJobEnds(t *testing.T) {
	b := newBrowser(t)
	b.tolerate(`the server responded with a status of 401`)
	s := startServer(t, testdb.SQLite(t), map[string]string{"PIPELINE": "external"})
	token := userToken(t, "expiring")
	v := generate(t, s, token)

	tb := b.newTab("tab")
	// Signed out, the skip link leads to something that is there.
	tb.open(s.URL + "/")
	tb.wait("the sign-in form", `!document.getElementById("signin").hidden`)
	if !eval[bool](tb, `document.querySelector(document.querySelector(".skip-link").getAttribute("href")).checkVisibility()`) {
		t.Error("on the sign-in page the skip link points at a hidden section")
	}
	if eval[string](tb, `document.getElementById("signin-message").className`) == "alert" {
		t.Errorf("a first visit's %q is shown as an error", tb.text("signin-message"))
	}

	signIn(tb, s, fmt.Sprintf("/videos/%d", v.ID), token)
	tb.wait("● Connected", connState+` === "open"`)
	postWorkerJob(t, s, v.ID, 0, 1, 4)
	tb.wait("four steps", `document.querySelectorAll("#history li").length === 4`)
	tb.do(chromedp.Func(func(ctx context.Context, tgt *chromedp.Target) error {
		_, err := cdp.Call(ctx, tgt, network.DeleteCookies, network.DeleteCookiesParams{Name: "stephub_session", URL: s.URL})
		return err
	}))
	postWorkerJob(t, s, v.ID, 0, 5, stephubSteps)
	tb.wait("the sign-in form", `document.getElementById("signin").checkVisibility() && document.getElementById("signin-message").textContent.includes("expired")`)
	tb.wait("the video loaded", `document.getElementById("player").readyState >= 1`)
	shown := eval[map[string]bool](tb, `(() => {
		const seen = (id) => document.getElementById(id).checkVisibility();
		return {notice: seen("notice"), player: seen("player"), history: seen("history")};
	})()`)
	for what, ok := range shown {
		if !ok {
			t.Errorf("the %s is hidden once the session expired at the job's end", what)
		}
	}
	checkFullHistory(t, "after the session expired", tb.history(), tb.historyIDs())
	tb.screenshot("session-expired")

	tb.do(chromedp.SendKeys(chromedp.ID("token-input"), token), chromedp.Click(chromedp.CSS(`#signin-form button`)))
	tb.wait("the dashboard again", `document.getElementById("generate").checkVisibility() && document.getElementById("signin").hidden && document.getElementById("credits").textContent === "900"`)
	if !eval[bool](tb, `document.getElementById("notice").checkVisibility()`) {
		t.Error("the outcome is gone after signing in again")
	}
}

// TestDashboardKeepsEveryTabCurrent checks what the page says beyond the
// watched job: a running video's row in another tab's list moves on
// without Refresh, a generate in one tab updates the credits of another,
// the tab's title follows the job, a missing video says only that, and
// ?shared=0 streams from the tab, as its connection details say.
func TestDashboardKeepsEveryTabCurrent(t *testing.T) {
	b := newBrowser(t)
	b.tolerate(`the server responded with a status of 404`)
	s := startServer(t, testdb.SQLite(t), map[string]string{"PIPELINE": "external"})
	token := userToken(t, "current")
	v := generate(t, s, token)

	one := b.newTab("tab 1")
	one.do(chromedp.EmulateViewport(700, 900))
	signIn(one, s, "/", token)
	if h := eval[float64](one, `document.querySelector(".topbar").getBoundingClientRect().height`); h > 80 {
		t.Errorf("the top bar is %.0f px tall at 700 px; want one line", h)
	}
	two := b.newTab("tab 2")
	signIn(two, s, fmt.Sprintf("/videos/%d?shared=0", v.ID), token)
	two.wait("● Connected", connState+` === "open"`)
	if got := two.text("debug-info"); !strings.Contains(got, "from this tab") {
		t.Errorf("connection details with ?shared=0: %q; want the stream in this tab", got)
	}

	postWorkerJob(t, s, v.ID, 0, 1, 4)
	two.wait("the title at step 4", `document.title.startsWith("44% · Step 4 of 8")`)
	one.wait("the list row at 44% without Refresh", fmt.Sprintf(`document.querySelector('#video-list li[data-id="%d"] .video-progress')?.textContent === "44%%"`, v.ID))

	two.do(chromedp.SendKeys(chromedp.ID("prompt"), "A second video from tab 2"), chromedp.Click(chromedp.ID("generate-button")))
	one.wait("tab 1's credits after tab 2's generate", `document.getElementById("credits").textContent.replace(/\D/g, "") === "800"`)

	one.open(s.URL + "/videos/999999")
	one.wait("the not-found message", `document.getElementById("watch-alert").textContent.includes("no video #999999")`)
	if got := one.text("current-step"); strings.Contains(got, "Waiting") {
		t.Errorf("a missing video shows %q beside the not-found error", got)
	}
}
