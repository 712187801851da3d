package main

import (
	"context"
	_ "embed"
	"fmt"
	"strings"
	"testing"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"

	"github.com/stephub/stephub/internal/testdb"
)

// axeSource is axe-core's axe.min.js, vendored at the version in
// testdata/axe-core/VERSION by testdata/axe-core/update.sh, with its
// licence (MPL-2.0) beside it.
//
//go:embed testdata/axe-core/axe.min.js
var axeSource string

// colorScheme makes the tab's pages match prefers-color-scheme: scheme
// ("light" or "dark").
func (tb *tab) colorScheme(scheme string) {
	tb.t.Helper()
	tb.do(chromedp.Func(func(ctx context.Context, tgt *chromedp.Target) error {
		_, err := cdp.Call(ctx, tgt, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{
			Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: scheme}},
		})
		return err
	}))
}

// checkAxe runs axe-core on the page as it is now and fails the test for
// each violation. axe is evaluated through DevTools rather than loaded by
// the page, so the page's Content-Security-Policy stays 'self'-only.
func (tb *tab) checkAxe(state string) {
	tb.t.Helper()
	if !eval[bool](tb, `typeof window.axe === "object"`) {
		tb.do(chromedp.Evaluate[chromedp.Void](axeSource))
	}
	violations := eval[[]string](tb, `axe.run(document, {resultTypes: ["violations"]}).then((r) =>
		r.violations.map((v) => v.id + " (" + v.impact + "): " + v.help + "\n    " +
			v.nodes.map((n) => n.target.join(" ") + (n.failureSummary ? " — " + n.failureSummary.replace(/\s+/g, " ") : "")).join("\n    ")))`)
	for _, v := range violations {
		tb.t.Errorf("%s: axe: %s", state, v)
	}
}

// TestDashboardAxe runs axe-core on each state of the dashboard, at a
// desktop and a phone width, in light and dark: signed out, the empty
// dashboard, a job mid-way with a long prompt, and the finished job.
func TestDashboardAxe(t *testing.T) {
	b := newBrowser(t)
	b.tolerate(`the server responded with a status of 401`)
	s := startServer(t, testdb.SQLite(t), map[string]string{"PIPELINE": "external"})
	token := userToken(t, "axe")
	resp, body := call(t, "POST", s.URL+"/api/v1/videos/generate", token,
		map[string]any{"prompt": strings.Repeat("A long and winding prompt. ", 70), "model": "sora-2-pro"}, nil)
	if resp.StatusCode != 201 {
		t.Fatalf("generate: %d %s", resp.StatusCode, body)
	}
	v := decodeJSON[video](t, body)
	postWorkerJob(t, s, v.ID, 0, 1, 4)
	watchURL := fmt.Sprintf("%s/videos/%d", s.URL, v.ID)

	sizes := []struct {
		name          string
		width, height int64
		mobile        bool
	}{{"desktop", 1280, 900, false}, {"phone", 390, 844, true}}
	schemes := []string{"light", "dark"}
	tb := b.newTab("tab")
	for _, size := range sizes {
		for _, scheme := range schemes {
			name := size.name + "-" + scheme
			if size.mobile {
				tb.do(chromedp.EmulateViewport(size.width, size.height, chromedp.EmulateMobile))
			} else {
				tb.do(chromedp.EmulateViewport(size.width, size.height))
			}
			tb.colorScheme(scheme)

			// Signed out: the server clears the cookie, the page its flag.
			tb.open(s.URL + "/")
			tb.do(chromedp.Evaluate[chromedp.Void](`fetch("/api/v1/session", {method: "DELETE"})
				.then(() => localStorage.removeItem("stephub_signed_in"))`, chromedp.EvalAwaitPromise))
			tb.open(s.URL + "/")
			tb.wait("the sign-in form", `!document.getElementById("signin").hidden`)
			tb.checkAxe(name + " signed out")

			signIn(tb, s, "/", token)
			tb.wait("the list", `document.querySelectorAll("#video-list li").length === 1`)
			tb.checkAxe(name + " dashboard")

			tb.open(watchURL)
			tb.wait("four steps", `document.querySelectorAll("#history li").length === 4 && document.getElementById("watch-meta").textContent !== ""`)
			tb.checkAxe(name + " watching")
			tb.screenshot("axe-watching-" + name)
		}
	}
	postWorkerJob(t, s, v.ID, 0, 5, stephubSteps)
	for _, size := range sizes {
		for _, scheme := range schemes {
			name := size.name + "-" + scheme
			if size.mobile {
				tb.do(chromedp.EmulateViewport(size.width, size.height, chromedp.EmulateMobile))
			} else {
				tb.do(chromedp.EmulateViewport(size.width, size.height))
			}
			tb.colorScheme(scheme)
			tb.open(watchURL)
			tb.wait("the completion", finished)
			tb.checkAxe(name + " completed")
		}
	}
}
