package ui

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/skiffml/skiff/executors/sim"
)

// browser starts headless chromium for t, or skips when it is missing
// outside CI (CI=true makes a missing browser a failure).
func browser(t *testing.T) context.Context {
	t.Helper()
	bin := ""
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			bin = p
			break
		}
	}
	if bin == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("chromium is not installed (CI=true): .ci/run installs it")
		}
		t.Skip("chromium is not installed: apt-get install chromium to run the browser tests")
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(bin), chromedp.NoSandbox,
		chromedp.WindowSize(1400, 900), chromedp.Flag("disable-gpu", true))
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	// chromedp's protocol types lag Debian's chromium: events it cannot
	// decode are logged, not fatal, and say nothing about the page
	quiet := chromedp.WithErrorf(func(f string, args ...any) {
		if msg := fmt.Sprintf(f, args...); !strings.Contains(msg, "could not unmarshal event") {
			t.Logf("chromedp: %s", msg)
		}
	})
	ctx, cancelC := chromedp.NewContext(actx, quiet)
	ctx, cancelT := context.WithTimeout(ctx, 90*time.Second)
	t.Cleanup(func() { cancelT(); cancelC(); cancelA() })
	// any dialog (alert, confirm) a page opens is an executed payload
	// unless a test expects one
	chromedp.ListenTarget(ctx, func(ev any) {
		if d, ok := ev.(*page.EventJavascriptDialogOpening); ok && !strings.Contains(d.Message, "Cancel this run") {
			t.Errorf("a page opened a %s dialog: %q", d.Type, d.Message)
			go func() { _ = chromedp.Run(ctx, page.HandleJavaScriptDialog(false)) }()
		}
	})
	if err := chromedp.Run(ctx); err != nil {
		t.Fatalf("start %s: %v", bin, err)
	}
	return ctx
}

func shot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	var png []byte
	if err := chromedp.Run(ctx, chromedp.FullScreenshot(&png, 100)); err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	p := filepath.Join(t.ArtifactDir(), name+".png")
	if err := os.WriteFile(p, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot %s", p)
}

func TestBrowser_PagesLiveDAGAndInertPayloads(t *testing.T) {
	ctx := browser(t)
	h := newHarness(t, harnessOpts{sim: sim.Config{Tasks: map[string]sim.Behavior{"shout": {Duration: 2 * time.Second}}}})
	xssName := `<img src=x onerror="window.__xss=1;alert('name')">sweep`
	art := h.submit(xssName, artifactPipeline)
	h.waitRun(art)
	done := h.submit("hello-done", simPipeline)
	h.waitRun(done)
	live := h.submit("hello-live", simPipeline)

	// a running run's DAG changes state without a reload
	var before, after string
	var marker bool
	node := `document.querySelector('#dag [data-node="1"]').getAttribute('class')`
	err := chromedp.Run(ctx,
		chromedp.Navigate(h.srv.URL+"/runs/"+live),
		chromedp.WaitVisible(`#dag`),
		chromedp.Evaluate(`window.__marker = 1`, nil),
		chromedp.Evaluate(node, &before),
	)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(before, "st-succeeded") {
		t.Fatalf("shout already done when the page loaded: %q", before)
	}
	shot(t, ctx, "run-live")
	if err := chromedp.Run(ctx,
		chromedp.Poll(`document.querySelector('#dag [data-node="1"]').classList.contains('st-succeeded')`, nil, chromedp.WithPollingTimeout(20*time.Second)),
		chromedp.Evaluate(node, &after),
		chromedp.Evaluate(`window.__marker === 1`, &marker),
	); err != nil {
		t.Fatalf("the DAG did not turn SUCCEEDED live (before %q): %v", before, err)
	}
	if !marker {
		t.Fatal("the page reloaded instead of changing classes")
	}

	// every page loads with real data; payloads stay text
	pages := []struct{ name, path, wait, want string }{
		{"runs", "/runs", `table.runs`, "hello-done"},
		{"run-task-log", "/runs/" + art + "?task=0", `#log`, "done"},
		{"artifact-markdown", "/runs/" + art + "/tasks/0/outputs/report", `article.markdown`, "Report"},
		{"artifact-html", "/runs/" + art + "/tasks/0/outputs/page", `iframe.html-artifact`, "page"},
		{"artifact-metrics", "/runs/" + art + "/tasks/0/outputs/metrics", `table.metrics`, "accuracy"},
		{"compare", "/compare?runs=" + art + "," + done, `table.compare`, "make.metrics.accuracy"},
		{"experiments", "/experiments", `table.grid`, "Default"},
	}
	for _, p := range pages {
		var text string
		err := chromedp.Run(ctx,
			chromedp.Navigate(h.srv.URL+p.path),
			chromedp.WaitVisible(p.wait),
			chromedp.Poll(fmt.Sprintf(`document.body.innerText.includes(%q)`, p.want), nil, chromedp.WithPollingTimeout(10*time.Second)),
			chromedp.Text(`main`, &text),
		)
		if err != nil {
			t.Fatalf("%s: %v", p.name, err)
		}
		shot(t, ctx, p.name)
		var xss bool
		if err := chromedp.Run(ctx, chromedp.Evaluate(`window.__xss !== undefined || document.title === "pwned"`, &xss)); err != nil {
			t.Fatal(err)
		}
		if xss {
			t.Fatalf("%s: a payload ran", p.name)
		}
	}
	var logText string
	if err := chromedp.Run(ctx, chromedp.Navigate(h.srv.URL+"/runs/"+art+"?task=0"),
		chromedp.Poll(`document.getElementById('log').textContent.includes('done')`, nil, chromedp.WithPollingTimeout(10*time.Second)),
		chromedp.Text(`#log`, &logText)); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logText, `<script>alert("log")</script>`) {
		t.Fatalf("the log's markup is not shown as text: %q", logText)
	}
}
