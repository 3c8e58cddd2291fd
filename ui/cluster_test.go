package ui

import (
	"encoding/json"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/skiffml/skiff/api"
)

// TestCluster_PageShowsWhatClusterStatusShows: with cluster membership the
// page shows each member's role, term, commit and applied index (as
// 'skiff cluster status'), and runs by state; without, it says the server
// runs as a single node. Its JSON form follows the store.
func TestCluster_PageShowsWhatClusterStatusShows(t *testing.T) {
	t.Parallel()
	single := newHarness(t, harnessOpts{})
	if r := single.must(200, "GET", "/cluster", "", ""); !strings.Contains(r.body, "single node without cluster membership") {
		t.Errorf("cluster page without membership:\n%.800s", r.body)
	}

	h := newHarness(t, harnessOpts{cluster: true, auth: true})
	cookie := h.admin
	h.waitRun(h.submit("one", simPipeline))
	r := h.must(200, "GET", "/cluster", cookie, "")
	id := h.st.ID()
	for _, want := range []string{`data-node="` + id + `"`, `data-field="role">leader<`, `data-field="leader">` + id + `<`, `data-state="SUCCEEDED">succeeded <b>1</b>`} {
		if !strings.Contains(r.body, want) {
			t.Errorf("cluster page lacks %q:\n%.3000s", want, r.body)
		}
	}
	var d clusterData
	j := h.must(200, "GET", "/cluster", cookie, "", "Accept", "application/json")
	if err := json.Unmarshal([]byte(j.body), &d); err != nil || len(d.Members) != 1 {
		t.Fatalf("cluster JSON: %v %s", err, j.body)
	}
	m := d.Members[0]
	st := h.st.Status()
	if m.Role != "leader" || !m.Leader || !m.Voter || d.Term != st.Term || m.Applied == 0 || m.Commit < m.Applied || d.Leader != id {
		t.Errorf("cluster JSON %+v, raft status %+v", d, st)
	}
	// A viewer of one namespace sees it too (GET /cluster is viewer's).
	viewer := h.token("team-a", api.RoleViewer)
	h.must(200, "GET", "/cluster", viewer, "")
}

// TestBrowser_ClusterPage: the page loads in a real browser with a real
// server, and its numbers follow the cluster while it is open.
func TestBrowser_ClusterPage(t *testing.T) {
	ctx := browser(t)
	h := newHarness(t, harnessOpts{cluster: true})
	h.waitRun(h.submit("first", simPipeline))
	var applied string
	if err := chromedp.Run(ctx, chromedp.Navigate(h.srv.URL+"/cluster"), chromedp.WaitVisible(`#members`),
		chromedp.TextContent(`#members [data-field="applied"]`, &applied)); err != nil {
		t.Fatal(err)
	}
	shot(t, ctx, "cluster")
	before, err := strconv.Atoi(strings.TrimSpace(applied))
	if err != nil || before == 0 {
		t.Fatalf("applied index %q", applied)
	}
	h.waitRun(h.submit("second", simPipeline))
	deadline := time.Now().Add(30 * time.Second)
	for {
		var now, chips string
		if err := chromedp.Run(ctx, chromedp.TextContent(`#members [data-field="applied"]`, &now),
			chromedp.TextContent(`#run-states`, &chips)); err != nil {
			t.Fatal(err)
		}
		if n, _ := strconv.Atoi(strings.TrimSpace(now)); n > before && regexp.MustCompile(`succeeded\s*2`).MatchString(chips) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the page did not follow the cluster: applied %s (was %d), runs %q", now, before, chips)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
