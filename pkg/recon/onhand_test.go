package recon_test

import (
	"strings"
	"testing"
	"time"

	"github.com/sinewhq/sinew/pkg/recon"
)

func TestParseOnhandCount(t *testing.T) {
	rows, err := recon.ParseOnhandCount(strings.NewReader("# Beaker count\ncount_date,department,reagent_code,quantity,unit\n" +
		"2026-11-26,CORELAB,CBC-PK,987,PK\n2026-11-26, CORELAB ,GLU-R1,0.75,L\n2026-11-26,CORELAB\n"))
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 3 || rows[1].Department != "CORELAB" || rows[1].Qty != "0.75" || rows[2].Code != "" || rows[0].Line != 3 {
		t.Errorf("rows %+v", rows)
	}
	if _, err := recon.ParseOnhandCount(strings.NewReader("date,dept,code,qty,unit\n")); err == nil {
		t.Error("a wrong header was accepted")
	}
	day, at, err := recon.CountTime("2026-11-26")
	if err != nil || day != "2026-11-26" || !at.Equal(time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("CountTime(day) = %s %s %v", day, at, err)
	}
	day, at, err = recon.CountTime("2026-11-26T22:15:00-05:00")
	if err != nil || day != "2026-11-27" || !at.Equal(time.Date(2026, 11, 27, 3, 15, 0, 0, time.UTC)) {
		t.Errorf("CountTime(moment) = %s %s %v", day, at, err)
	}
}

func TestConvertQty(t *testing.T) {
	qty := func(s string) recon.Qty { q, _ := recon.ParseQty(s); return q }
	for _, c := range []struct {
		q, f, want string
		bad        bool
	}{{"0.75", "1000", "750", false}, {"2", "1", "2", false}, {"-0.005", "1000", "-5", false}, {"3", "0.5", "1.5", false},
		{"0.0001", "0.5", "", true}, {"1.5", "12", "18", false}} {
		got, err := recon.ConvertQty(qty(c.q), c.f)
		if (err != nil) != c.bad || !c.bad && got.String() != c.want {
			t.Errorf("%s × %s = %s, %v; want %s", c.q, c.f, got, err, c.want)
		}
	}
}

func TestReconcileOnhand(t *testing.T) {
	qty := func(s string) recon.Qty { q, _ := recon.ParseQty(s); return q }
	count := func(code, item, uom, q string) recon.OnhandCount {
		return recon.OnhandCount{Line: 2, Code: code, Department: "CORELAB", EpicQty: q, Organization: "MAIN", Subinventory: "LAB-CORE",
			Item: item, UOM: uom, Quantity: qty(q)}
	}
	bal := func(item, uom, q string) recon.OnhandBalance {
		return recon.OnhandBalance{Organization: "MAIN", Subinventory: "LAB-CORE", Item: item, UOM: uom, Quantity: qty(q)}
	}
	baseCount := []recon.OnhandCount{count("CBC-PK", "LAB-4001", "EA", "980"), count("GLU-R1", "LAB-4002", "ML", "750")}
	baseFusion := []recon.OnhandBalance{bal("LAB-4001", "EA", "980"), bal("LAB-4002", "ML", "750"), bal("RX-1001", "EA", "1000"),
		{Organization: "MAIN", Subinventory: "PHARM-MAIN", Item: "LAB-4001", UOM: "EA", Quantity: qty("5")}}
	countable := map[string]bool{"LAB-4001": true, "LAB-4002": true}
	tol := recon.Tolerance{BasisPoints: 50}
	for _, c := range []struct {
		name    string
		count   func() []recon.OnhandCount
		fusion  func() []recon.OnhandBalance
		final   bool
		verdict string
		want    []string
	}{
		{"all match", nil, nil, true, recon.VerdictPass, []string{"onhand|MAIN|LAB-CORE|LAB-4002", "2 rows counted, 2 mapped"}},
		{"within 0.5%", nil, func() []recon.OnhandBalance {
			f := append([]recon.OnhandBalance(nil), baseFusion...)
			f[0].Quantity = qty("976") // 4 of 980: 0.41 %
			return f
		}, true, recon.VerdictPass, []string{"within tolerance"}},
		{"beyond 0.5%", nil, func() []recon.OnhandBalance {
			f := append([]recon.OnhandBalance(nil), baseFusion...)
			f[1].Quantity = qty("740") // 10 of 750: 1.3 %
			return f
		}, true, recon.VerdictVariance, []string{"item LAB-4002: Beaker counted 750 ML (GLU-R1@CORELAB), Fusion shows 740; beyond tolerance"}},
		{"beyond tolerance during read lag", nil, func() []recon.OnhandBalance {
			f := append([]recon.OnhandBalance(nil), baseFusion...)
			f[1].Quantity = qty("740")
			return f
		}, false, recon.VerdictPending, nil},
		{"unmapped code", func() []recon.OnhandCount {
			c := append([]recon.OnhandCount(nil), baseCount...)
			return append(c, recon.OnhandCount{Line: 4, Code: "XYZ-9", Department: "CORELAB", EpicQty: "3", EpicUnit: "EA",
				Problem: "no item crosswalk row for reagent XYZ-9"})
		}, nil, true, recon.VerdictVariance, []string{"row|4|XYZ-9", "no item crosswalk row for reagent XYZ-9", "3 rows counted, 2 mapped"}},
		{"item not counted", func() []recon.OnhandCount { return baseCount[:1] }, nil, true, recon.VerdictVariance,
			[]string{"item LAB-4002: Fusion shows 750 ML in LAB-CORE, Beaker's count has none"}},
		{"counted, not in Fusion", nil, func() []recon.OnhandBalance { return baseFusion[:1] }, true, recon.VerdictVariance,
			[]string{"Fusion shows no on-hand in LAB-CORE"}},
		{"two codes, one item", func() []recon.OnhandCount {
			c := append([]recon.OnhandCount(nil), baseCount...)
			c[0].Quantity = qty("900")
			c = append(c, count("CBC-PK2", "LAB-4001", "EA", "80"))
			return c
		}, nil, true, recon.VerdictPass, []string{"CBC-PK@CORELAB, CBC-PK2@CORELAB"}},
		{"UOM differs", nil, func() []recon.OnhandBalance {
			f := append([]recon.OnhandBalance(nil), baseFusion...)
			f[1].UOM = "L"
			return f
		}, true, recon.VerdictVariance, []string{"Fusion's UOM is L, the item crosswalk's ML"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			in := &recon.OnhandInput{Scope: "2026-11-26/onhand", File: "count.csv", Count: baseCount, Fusion: baseFusion,
				Countable: countable, Tolerance: tol, Final: c.final}
			if c.count != nil {
				in.Count = c.count()
			}
			if c.fusion != nil {
				in.Fusion = c.fusion()
			}
			res := recon.ReconcileOnhand(in)
			var all []string
			for _, r := range res.Publishable() {
				if r.Scope != "2026-11-26/onhand" {
					t.Errorf("row scope %q", r.Scope)
				}
				all = append(all, r.String())
			}
			text := strings.Join(all, "\n")
			if res.Summary.Verdict != c.verdict {
				t.Errorf("verdict %s, want %s\n%s", res.Summary.Verdict, c.verdict, text)
			}
			for _, w := range c.want {
				if !strings.Contains(text, w) {
					t.Errorf("no %q in\n%s", w, text)
				}
			}
			if strings.Contains(text, "RX-1001") || strings.Contains(text, "PHARM-MAIN") {
				t.Errorf("an item or subinventory Beaker does not count was compared:\n%s", text)
			}
		})
	}
}
