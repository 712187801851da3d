package main

import (
	"encoding/json"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"go.yaml.in/yaml/v3"

	"github.com/stephub/stephub/internal/testdb"
)

// The monitoring files of deploy/, from this package's folder.
const (
	dashboardFile = "../../deploy/grafana/stephub.json"
	alertsFile    = "../../deploy/prometheus/alerts.yml"
)

// The PromQL metric names are read with regular expressions rather than
// Prometheus's own parser: the parser's module would pull Prometheus and its
// dependencies into go.mod, and move shared ones (gorilla/websocket,
// prometheus/common) to other versions, for a test. What the test needs is
// narrow: the names of the selected series. The syntax of the expressions is
// checked by promtool (see deploy/prometheus/alerts_test.yml).
var (
	// promqlStrings matches PromQL string literals, whose content is no
	// name: "…" and '…' with escapes, and `…` raw.
	promqlStrings = regexp.MustCompile("\"(?:[^\"\\\\]|\\\\.)*\"|'(?:[^'\\\\]|\\\\.)*'|`[^`]*`")
	// promqlMatchers and promqlRanges match label matchers and range,
	// subquery or Grafana-variable brackets, once strings are gone.
	promqlMatchers = regexp.MustCompile(`\{[^}]*\}`)
	promqlRanges   = regexp.MustCompile(`\[[^\]]*\]`)
	// promqlGrouping matches the label lists of aggregations and vector
	// matching, which name labels, not metrics.
	promqlGrouping = regexp.MustCompile(`\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)`)
	// promqlName matches an identifier that starts after something that
	// cannot be part of a name or number, so 1e-9 yields no "e".
	promqlName = regexp.MustCompile(`(?:^|[^A-Za-z0-9_:.])([A-Za-z_:][A-Za-z0-9_:]*)`)
	// grafanaLabelValues matches a Grafana variable query such as
	// label_values(metric, label), whose second argument is a label.
	grafanaLabelValues = regexp.MustCompile(`^\s*label_values\((.*),\s*[A-Za-z_][A-Za-z0-9_]*\s*\)\s*$`)
)

// promqlKeywords are the identifiers of PromQL that are neither metrics nor
// followed by "(" (functions and aggregations are, and are skipped so).
var promqlKeywords = []string{"and", "or", "unless", "bool", "offset", "group_left", "group_right", "inf", "nan"}

// metricNames returns the metric names that expr, PromQL or a Grafana
// label_values query, selects, in order of appearance.
func metricNames(expr string) []string {
	if m := grafanaLabelValues.FindStringSubmatch(expr); m != nil {
		expr = m[1]
	}
	expr = promqlStrings.ReplaceAllString(expr, `""`)
	expr = promqlMatchers.ReplaceAllString(expr, "{}")
	expr = promqlRanges.ReplaceAllString(expr, "[]")
	expr = promqlGrouping.ReplaceAllString(expr, " ")
	var names []string
	for _, m := range promqlName.FindAllStringSubmatchIndex(expr, -1) {
		name, rest := expr[m[2]:m[3]], strings.TrimSpace(expr[m[3]:])
		if strings.HasPrefix(rest, "(") || slices.Contains(promqlKeywords, strings.ToLower(name)) {
			continue
		}
		if !slices.Contains(names, name) {
			names = append(names, name)
		}
	}
	return names
}

func TestPromQLMetricNames(t *testing.T) {
	tests := []struct {
		expr string
		want []string
	}{
		{`up{job="stephub"} == 0`, []string{"up"}},
		{`sum by (le, transport) (rate(stephub_connection_duration_seconds_bucket{instance=~"$instance"}[$__rate_interval]))`,
			[]string{"stephub_connection_duration_seconds_bucket"}},
		{`histogram_quantile(0.99, sum(rate(m_bucket{route!~".*/(stream|ws)", code=~"5.."}[5m])) by (le))`, []string{"m_bucket"}},
		{`a / b > 0.05 and c > 1e-9 or d unless e`, []string{"a", "b", "c", "d", "e"}},
		{`rate(x[5m] offset 1h) * on (instance) group_left (version) go_info`, []string{"x", "go_info"}},
		{`max_over_time(deriv(y[1h:5m])[30m:]) / ignoring(code) z`, []string{"y", "z"}},
		{`sum(x) without (a, b) + x`, []string{"x"}},
		{`label_values(stephub_connections_active, instance)`, []string{"stephub_connections_active"}},
		{`vector(1) + time()`, nil},
		{`count_values("value", build_version)`, []string{"build_version"}},
		{`sum(rate(x{label="by (y)"}[5m]))`, []string{"x"}},
	}
	for _, tt := range tests {
		if got := metricNames(tt.expr); !slices.Equal(got, tt.want) {
			t.Errorf("metricNames(%s) = %q; want %q", tt.expr, got, tt.want)
		}
	}
}

// dashboard is what the tests read of a Grafana dashboard.
type dashboard struct {
	Title      string  `json:"title"`
	UID        string  `json:"uid"`
	Schema     int     `json:"schemaVersion"`
	Panels     []panel `json:"panels"`
	Templating struct {
		List []struct {
			Name       string          `json:"name"`
			Type       string          `json:"type"`
			Query      json.RawMessage `json:"query"`
			Datasource *datasource     `json:"datasource"`
		} `json:"list"`
	} `json:"templating"`
}

type datasource struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

type panel struct {
	ID         int         `json:"id"`
	Type       string      `json:"type"`
	Title      string      `json:"title"`
	GridPos    *struct{}   `json:"gridPos"`
	Datasource *datasource `json:"datasource"`
	Targets    []struct {
		Datasource *datasource `json:"datasource"`
		Expr       string      `json:"expr"`
	} `json:"targets"`
	Panels []panel `json:"panels"` // a collapsed row's
}

// flatten returns the panels, with those inside rows.
func flatten(ps []panel) []panel {
	var out []panel
	for _, p := range ps {
		out = append(out, p)
		out = append(out, flatten(p.Panels)...)
	}
	return out
}

// readDashboard parses the Grafana dashboard and checks what an import into
// Grafana 10+ relies on: a Prometheus data source variable that every
// query goes through, and unique, placed panels. It returns the dashboard's
// queries.
func readDashboard(t *testing.T) []string {
	t.Helper()
	data, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	if err := json.Unmarshal(data, &d); err != nil {
		t.Fatalf("%s: %v", dashboardFile, err)
	}
	if d.Title == "" || d.UID == "" || d.Schema < 36 {
		t.Errorf("dashboard title %q, uid %q, schemaVersion %d; want both set and a Grafana 10+ schema (36 or more)", d.Title, d.UID, d.Schema)
	}
	wantDS := datasource{Type: "prometheus", UID: "${datasource}"}
	var exprs []string
	hasDS := false
	for _, v := range d.Templating.List {
		switch {
		case v.Name == "datasource":
			hasDS = v.Type == "datasource" && string(v.Query) == `"prometheus"`
		case v.Type == "query":
			if v.Datasource == nil || *v.Datasource != wantDS {
				t.Errorf("variable %s: datasource %+v; want %+v", v.Name, v.Datasource, wantDS)
			}
			var q struct {
				Query string `json:"query"`
			}
			if err := json.Unmarshal(v.Query, &q); err != nil {
				t.Errorf("variable %s: query %s: %v", v.Name, v.Query, err)
			}
			exprs = append(exprs, q.Query)
		}
	}
	if !hasDS {
		t.Errorf("templating: no variable datasource of type datasource querying prometheus")
	}
	ids := make(map[int]bool)
	for _, p := range flatten(d.Panels) {
		if ids[p.ID] || p.GridPos == nil || p.Title == "" {
			t.Errorf("panel %d %q: want a unique id, a title and a gridPos", p.ID, p.Title)
		}
		ids[p.ID] = true
		if p.Type == "row" {
			continue
		}
		if p.Datasource == nil || *p.Datasource != wantDS || len(p.Targets) == 0 {
			t.Errorf("panel %q: datasource %+v, %d queries; want %+v and queries", p.Title, p.Datasource, len(p.Targets), wantDS)
		}
		for _, q := range p.Targets {
			if q.Datasource == nil || *q.Datasource != wantDS || q.Expr == "" {
				t.Errorf("panel %q: query %q on %+v; want a query on %+v", p.Title, q.Expr, q.Datasource, wantDS)
			}
			exprs = append(exprs, q.Expr)
		}
	}
	return exprs
}

// alertRules is what the tests read of a Prometheus rule file.
type alertRules struct {
	Groups []struct {
		Name  string `yaml:"name"`
		Rules []struct {
			Alert       string            `yaml:"alert"`
			Expr        string            `yaml:"expr"`
			For         string            `yaml:"for"`
			Labels      map[string]string `yaml:"labels"`
			Annotations map[string]string `yaml:"annotations"`
		} `yaml:"rules"`
	} `yaml:"groups"`
}

// readAlerts parses the alert rules, checks that each says how bad it is
// and what happened, and returns their expressions.
func readAlerts(t *testing.T) []string {
	t.Helper()
	data, err := os.ReadFile(alertsFile)
	if err != nil {
		t.Fatal(err)
	}
	var f alertRules
	if err := yaml.Unmarshal(data, &f); err != nil {
		t.Fatalf("%s: %v", alertsFile, err)
	}
	var exprs []string
	for _, g := range f.Groups {
		for _, r := range g.Rules {
			if r.Alert == "" || r.Expr == "" || r.For == "" || r.Labels["severity"] == "" || r.Annotations["summary"] == "" || r.Annotations["description"] == "" {
				t.Errorf("rule %q: want alert, expr, for, a severity label, a summary and a description", r.Alert)
			}
			exprs = append(exprs, r.Expr)
		}
	}
	if len(exprs) == 0 {
		t.Fatalf("%s: no rules", alertsFile)
	}
	return exprs
}

// generatedMetrics are the series Prometheus makes up itself for every
// scrape target; a server does not export them.
var generatedMetrics = []string{"up"}

// TestMonitoringFilesUseExportedMetrics reads every query of the Grafana
// dashboard and of the alert rules and checks that each metric they name is
// one a running server exports, so that no panel stays empty and no alert
// waits forever on a misspelt name. It also checks that the dashboard shows
// every metric the contract names.
func TestMonitoringFilesUseExportedMetrics(t *testing.T) {
	// On PostgreSQL, so that a broker runs and its series exist.
	s := startServer(t, testdb.Postgres(t), nil)
	fams := scrapeMetrics(t, s)
	// A histogram's or summary's series are its name with a suffix.
	exported := func(name string) bool {
		if fams[name] != nil || slices.Contains(generatedMetrics, name) {
			return true
		}
		for _, suffix := range []string{"_bucket", "_sum", "_count"} {
			if base, ok := strings.CutSuffix(name, suffix); ok {
				if f := fams[base]; f != nil && (f.GetType() == dto.MetricType_HISTOGRAM || f.GetType() == dto.MetricType_SUMMARY) {
					return true
				}
			}
		}
		return false
	}

	dashboardExprs := readDashboard(t)
	shown := make(map[string]bool)
	for _, file := range []struct {
		name  string
		exprs []string
	}{{dashboardFile, dashboardExprs}, {alertsFile, readAlerts(t)}} {
		for _, expr := range file.exprs {
			names := metricNames(expr)
			if len(names) == 0 {
				t.Errorf("%s: %s selects no metric", file.name, expr)
			}
			for _, name := range names {
				if !exported(name) {
					t.Errorf("%s: %s uses %s, which the server does not export", file.name, expr, name)
				}
				if file.name == dashboardFile {
					shown[strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(name, "_bucket"), "_sum"), "_count")] = true
				}
			}
		}
	}
	for name := range contractMetrics {
		if !shown[name] {
			t.Errorf("the dashboard shows no %s", name)
		}
	}
	for _, name := range []string{"go_goroutines", "go_memstats_heap_inuse_bytes", "process_resident_memory_bytes"} {
		if !shown[name] {
			t.Errorf("the dashboard shows no %s", name)
		}
	}
	// The row between nodes shows every counter of the brokers.
	brokers := 0
	for name := range fams {
		if strings.HasPrefix(name, "stephub_broker_") {
			brokers++
			if !shown[name] {
				t.Errorf("the dashboard shows no %s", name)
			}
		}
	}
	if brokers == 0 {
		t.Error("the server exports no stephub_broker_ metric")
	}
}
