package lint

import (
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/prometheus/prometheus/promql/parser"
)

// dashboard is what TestDashboard reads of a Grafana dashboard.
type dashboard struct {
	SchemaVersion int    `json:"schemaVersion"`
	UID           string `json:"uid"`
	Title         string `json:"title"`
	Templating    struct {
		List []struct {
			Name  string `json:"name"`
			Type  string `json:"type"`
			Query any    `json:"query"`
		} `json:"list"`
	} `json:"templating"`
	Panels []struct {
		ID         int                      `json:"id"`
		Type       string                   `json:"type"`
		Title      string                   `json:"title"`
		Datasource datasource               `json:"datasource"`
		GridPos    struct{ H, W, X, Y int } `json:"gridPos"`
		Targets    []struct {
			Expr       string     `json:"expr"`
			RefID      string     `json:"refId"`
			Datasource datasource `json:"datasource"`
		} `json:"targets"`
	} `json:"panels"`
}

type datasource struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

// grafanaVars stand for the variables Grafana expands before a query
// reaches Prometheus, so that the queries parse as PromQL.
var grafanaVars = strings.NewReplacer("$__rate_interval", "5m", "$__interval", "1m", "$__range", "1h")

// TestDashboard checks deploy/grafana/trail.json: a recent schema, a
// Prometheus data source variable every panel and query uses, the job and
// instance variables, unique panel ids on a 24-column grid with no overlap,
// and every query valid PromQL once Grafana's variables are expanded.
func TestDashboard(t *testing.T) {
	b, err := os.ReadFile("../grafana/trail.json")
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatal(err)
	}
	if d.SchemaVersion < 36 || d.UID == "" || d.Title == "" {
		t.Errorf("schemaVersion %d, uid %q, title %q: want a schema of Grafana 9 or later, a uid and a title", d.SchemaVersion, d.UID, d.Title)
	}
	vars := map[string]string{}
	for _, v := range d.Templating.List {
		vars[v.Name] = v.Type
		if q, ok := v.Query.(map[string]any); ok {
			if _, err := parser.NewParser(parser.Options{}).ParseExpr(labelValuesSelector(q["query"])); err != nil {
				t.Errorf("variable %s: %v", v.Name, err)
			}
		}
	}
	if vars["datasource"] != "datasource" || vars["job"] != "query" || vars["instance"] != "query" {
		t.Errorf("variables %v: want datasource (a data source), job and instance", vars)
	}
	p := parser.NewParser(parser.Options{})
	ids := map[int]bool{}
	cells := map[[2]int]string{}
	for _, pn := range d.Panels {
		if ids[pn.ID] {
			t.Errorf("panel id %d twice", pn.ID)
		}
		ids[pn.ID] = true
		if pn.Datasource != (datasource{"prometheus", "${datasource}"}) {
			t.Errorf("panel %q: data source %+v, want the variable", pn.Title, pn.Datasource)
		}
		if g := pn.GridPos; g.W <= 0 || g.H <= 0 || g.X < 0 || g.X+g.W > 24 {
			t.Errorf("panel %q: gridPos %+v outside the 24 columns", pn.Title, g)
		}
		for x := pn.GridPos.X; x < pn.GridPos.X+pn.GridPos.W; x++ {
			for y := pn.GridPos.Y; y < pn.GridPos.Y+pn.GridPos.H; y++ {
				if other, ok := cells[[2]int{x, y}]; ok {
					t.Errorf("panels %q and %q overlap", other, pn.Title)
				}
				cells[[2]int{x, y}] = pn.Title
			}
		}
		if len(pn.Targets) == 0 {
			t.Errorf("panel %q has no query", pn.Title)
		}
		for _, tg := range pn.Targets {
			if tg.Datasource != pn.Datasource {
				t.Errorf("panel %q, query %s: data source %+v", pn.Title, tg.RefID, tg.Datasource)
			}
			if _, err := p.ParseExpr(grafanaVars.Replace(tg.Expr)); err != nil {
				t.Errorf("panel %q, query %s: %v\n%s", pn.Title, tg.RefID, err, tg.Expr)
			}
		}
	}
	if len(d.Panels) < 10 {
		t.Errorf("%d panels", len(d.Panels))
	}
}

// labelValuesSelector is the series selector of a variable's
// label_values(selector, label) query.
func labelValuesSelector(q any) string {
	s, _ := q.(string)
	s = strings.TrimSuffix(strings.TrimPrefix(s, "label_values("), ")")
	if i := strings.LastIndex(s, ","); i >= 0 {
		s = s[:i]
	}
	return s
}
