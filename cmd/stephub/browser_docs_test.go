package main

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/getkin/kin-openapi/openapi3"

	"github.com/stephub/stephub/internal/testdb"
)

// TestDocsPage uses /docs as a developer would, in Debian's headless
// Chromium: the page lists every operation of the document, and "Try it
// out" on GET /api/v1/users/me, with a token pasted into Authorize, shows
// the server's 200 and the user. Any console error fails it, a refusal by
// the page's Content-Security-Policy included.
func TestDocsPage(t *testing.T) {
	s := startServer(t, testdb.SQLite(t), nil)
	resp, data := call(t, "GET", s.URL+"/openapi.json", "", nil, nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /openapi.json: %d", resp.StatusCode)
	}
	doc, err := openapi3.NewLoader().LoadFromData(data)
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for path, item := range doc.Paths.Map() {
		for method := range item.Operations() {
			want = append(want, method+" "+path)
		}
	}
	slices.Sort(want)

	b := newBrowser(t)
	tb := b.newTab("docs")
	tb.open(s.URL + "/docs")
	tb.wait("the operations", fmt.Sprintf(`document.querySelectorAll(".opblock").length >= %d`, len(want)))
	listed := eval[[]string](tb, `[...document.querySelectorAll(".opblock")].map((op) =>
		op.querySelector(".opblock-summary-method").textContent + " " + op.querySelector(".opblock-summary-path").dataset.path)`)
	slices.Sort(listed)
	if !slices.Equal(listed, want) {
		t.Errorf("the page lists\n%s\nthe document has\n%s", strings.Join(listed, "\n"), strings.Join(want, "\n"))
	}

	// Authorize: paste a user's token into the bearerAuth scheme.
	tb.do(chromedp.Click(chromedp.CSS(`.scheme-container button.authorize`)))
	tb.wait("the Authorize dialog", `document.querySelector(".auth-container") !== null`)
	marked := eval[bool](tb, `(() => {
		const box = [...document.querySelectorAll(".auth-container")].find((c) => c.querySelector("h4")?.textContent.includes("bearerAuth"));
		if (!box) return false;
		box.querySelector("input").id = "bearer-token";
		box.querySelector("button.authorize").id = "bearer-authorize";
		return true;
	})()`)
	if !marked {
		t.Fatal("the Authorize dialog has no bearerAuth scheme")
	}
	token := userToken(t, "docs-reader")
	tb.do(chromedp.SendKeys(chromedp.ID("bearer-token"), token),
		chromedp.Click(chromedp.ID("bearer-authorize")))
	tb.wait("the authorized scheme", `[...document.querySelectorAll(".auth-container")].some((c) =>
		c.querySelector("h4")?.textContent.includes("bearerAuth") && c.textContent.includes("Authorized"))`)
	tb.do(chromedp.Click(chromedp.CSS(`.dialog-ux button.btn-done`)))

	// Try it out: GET /api/v1/users/me, sent by the page to this server.
	op := `#operations-users-getMe`
	tb.do(chromedp.Click(chromedp.CSS(op + ` .opblock-summary-control`)))
	tb.wait("the operation's panel", fmt.Sprintf(`document.querySelector(%q) !== null`, op+` .try-out__btn`))
	tb.do(chromedp.Click(chromedp.CSS(op + ` .try-out__btn`)))
	tb.wait("the Execute button", fmt.Sprintf(`document.querySelector(%q) !== null`, op+` button.execute`))
	tb.do(chromedp.Click(chromedp.CSS(op + ` button.execute`)))
	tb.wait("the live response", fmt.Sprintf(`document.querySelector(%q)?.textContent.trim() === "200"`, op+` .live-responses-table tbody .response-col_status`))
	shown := eval[string](tb, fmt.Sprintf(`document.querySelector(%q).textContent`, op+` .live-responses-table tbody .response-col_description`))
	for _, s := range []string{`"id": "docs-reader"`, `"credits": 1000`, `"subscription_status": "active"`} {
		if !strings.Contains(shown, s) {
			t.Errorf("the response shown lacks %s:\n%s", s, shown)
		}
	}
	// The request went out with the pasted token, as the page shows in
	// its curl line.
	if curl := eval[string](tb, fmt.Sprintf(`document.querySelector(%q)?.textContent ?? ""`, op+` .curl-command`)); !strings.Contains(curl, "Authorization: Bearer ") {
		t.Errorf("the curl line shown sends no bearer token: %s", curl)
	}
	// Nothing pasted is kept where the origin's other scripts can read it.
	if stored := eval[string](tb, `JSON.stringify({...localStorage})`); strings.Contains(stored, token) {
		t.Errorf("the pasted token is kept in localStorage: %s", stored)
	}
	tb.screenshot("docs-try-it-out")
}
