package server_test

import (
	"fmt"
	"html"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/trailhq/trail/server"
)

var (
	eventsTable = regexp.MustCompile(`(?s)<table class="events">.*?</table>`)
	eventLink   = regexp.MustCompile(`href="/ui/events/(\d+)"`)
	reviewItem  = regexp.MustCompile(`<li class="card review[^"]*" id="access-(\d+)">`)
)

// pagerLink is the href of the page's link labelled label, unescaped, or
// "" without one.
func pagerLink(p uiPage, label string) string {
	m := regexp.MustCompile(`<a class="button" href="([^"]+)">` + regexp.QuoteMeta(label) + `</a>`).FindStringSubmatch(p.body)
	if m == nil {
		return ""
	}
	return html.UnescapeString(m[1])
}

// follow opens path and then each page's link labelled label until a page
// has none, and returns the indexes each page lists (found by list in the
// page's body), page by page, and the last page.
func (b *uiBrowser) follow(path, label string, list func(uiPage) []uint64) (pages [][]uint64, last uiPage) {
	b.t.Helper()
	for n := 0; path != ""; n++ {
		if n == 20 {
			b.t.Fatalf("still a link %q after 20 pages", label)
		}
		p := b.get(path)
		if p.status != http.StatusOK {
			b.t.Fatalf("GET %s: %d %.2000s", path, p.status, p.body)
		}
		pages = append(pages, list(p))
		path, last = pagerLink(p, label), p
	}
	return pages, last
}

// indexesIn returns the numbers re's first group matches in s, in order.
func indexesIn(t testing.TB, re *regexp.Regexp, s string) []uint64 {
	t.Helper()
	var out []uint64
	for _, m := range re.FindAllStringSubmatch(s, -1) {
		i, err := strconv.ParseUint(m[1], 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, i)
	}
	return out
}

// tableEvents lists the indexes the page's events table links to.
func tableEvents(t testing.TB) func(uiPage) []uint64 {
	return func(p uiPage) []uint64 {
		tbl := eventsTable.FindString(p.body)
		if tbl == "" {
			t.Fatalf("no events table on %s: %.2000s", p.url, p.body)
		}
		return indexesIn(t, eventLink, tbl)
	}
}

// wantPages checks that the pages list want (newest first) exactly once
// each, in order, size to a page.
func wantPages(t *testing.T, what string, pages [][]uint64, want []uint64, size int) {
	t.Helper()
	var got []uint64
	for i, p := range pages {
		if i < len(pages)-1 && len(p) != size {
			t.Errorf("%s: page %d lists %d, want %d", what, i+1, len(p), size)
		}
		got = append(got, p...)
	}
	if !slices.Equal(got, want) {
		t.Errorf("%s across %d pages: %d listed %v\nwant %d, each once, newest first: %v", what, len(pages), len(got), got, len(want), want)
	}
	if n := (len(want) + size - 1) / size; len(pages) != n {
		t.Errorf("%s: %d pages, want %d", what, len(pages), n)
	}
}

// newestFirst returns idx reversed.
func newestFirst(idx []uint64) []uint64 {
	out := slices.Clone(idx)
	slices.Reverse(out)
	return out
}

// TestConsoleSearchPages: a search matching more events than a page
// (50) is shown over pages joined by "Older events": every matching event
// appears exactly once across them, newest first, and the last page says
// the results end there. Events of a stream the search does not ask for
// (another patient's, whose id starts the same) appear on no page.
func TestConsoleSearchPages(t *testing.T) {
	e := startUI(t, server.ConsoleConfig{})
	var mine []uint64
	for i := range 2*50 + 7 {
		mine = append(mine, mxAppend(t, e.l, mxEvent("patient/pg", "pg", fmt.Sprintf("nurse-%d", i)))...)
		if i%10 == 0 {
			mxAppend(t, e.l, mxEvent("patient/pg1", "pg1", "nurse-other"))
		}
	}
	b := e.browser(t)
	b.signIn(e.tokens["officer"])
	pages, last := b.follow("/ui/search?stream=patient%2Fpg", "Older events", tableEvents(t))
	wantPages(t, "search stream=patient/pg", pages, newestFirst(mine), 50)
	if !strings.Contains(last.body, "End of the results.") {
		t.Errorf("the last page of the search does not say the results end there")
	}
}

// TestConsoleTimelinePages: a patient's timeline longer than a page (50)
// is shown over pages joined by "Older events": each of the patient's
// events appears exactly once, newest first, none of another patient's
// and none of the read records the pages themselves add; the last page
// says the timeline starts there.
func TestConsoleTimelinePages(t *testing.T) {
	e := startUI(t, server.ConsoleConfig{})
	var mine []uint64
	for i := range 2*50 + 3 {
		stream := "patient/pg"
		if i%2 == 1 {
			stream = "patient/pg/labs"
		}
		mine = append(mine, mxAppend(t, e.l, mxEvent(stream, "pg", fmt.Sprintf("nurse-%d", i)))...)
		if i%10 == 0 {
			mxAppend(t, e.l, mxEvent("patient/pg1", "pg1", "nurse-other"))
		}
	}
	b := e.browser(t)
	b.signIn(e.tokens["officer"])
	pages, last := b.follow("/ui/patient?patient=pg", "Older events", tableEvents(t))
	wantPages(t, "timeline of patient pg", pages, newestFirst(mine), 50)
	if !strings.Contains(last.body, "Start of the timeline.") {
		t.Errorf("the last page of the timeline does not say the timeline starts there")
	}
}

// TestConsoleReviewPages: more emergency accesses than a page (100) are
// shown over pages joined by "Older emergency accesses": each record of
// trail/break-glass appears exactly once, newest first (none is reviewed),
// and the last page has no such link.
func TestConsoleReviewPages(t *testing.T) {
	e := startUI(t, server.ConsoleConfig{})
	mxAppend(t, e.l, mxEvent("patient/7", "7", "nurse-1"))
	for i := range 2*100 + 3 {
		if st := e.apiRead(t, "er-doc", fmt.Sprintf("/v1/events?patient=7&purpose=emergency&reason=case+%d", i)); st != http.StatusOK {
			t.Fatalf("emergency read %d: %d", i, st)
		}
	}
	want := newestFirst(e.breakGlass(t))
	if len(want) != 2*100+3 {
		t.Fatalf("%d records in trail/break-glass, want %d", len(want), 2*100+3)
	}
	b := e.browser(t)
	b.signIn(e.tokens["reviewer"])
	pages, _ := b.follow("/ui/reviews", "Older emergency accesses", func(p uiPage) []uint64 {
		return indexesIn(t, reviewItem, p.body)
	})
	wantPages(t, "emergency accesses", pages, want, 100)
}
