package fbdi_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/sinewhq/sinew/pkg/fbdi"
)

// Column positions (0-based) used by the cases below.
const (
	cStatus      = 0
	cLedgerID    = 1
	cAcctDate    = 2
	cSource      = 3
	cCurrency    = 5
	cDateCreated = 6
	cActualFlag  = 7
	cSegment1    = 8
	cDR          = 38
	cCR          = 39
	cRef4        = 45
	cRef10       = 51
	cGroupID     = 66
	cLedgerName  = 91
)

// syntheticRecords returns the in-repo sample's rows as fields.
func syntheticRecords(t testing.TB) [][]string {
	t.Helper()
	r := fbdi.NewReader(bytes.NewReader(sample(t)))
	var out [][]string
	for {
		rec, err := r.Read()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, rec)
	}
}

func join(recs [][]string) string {
	var b strings.Builder
	for _, r := range recs {
		b.WriteString(strings.Join(r, ","))
		b.WriteByte('\n')
	}
	return b.String()
}

type checkCase struct {
	name   string
	mutate func(r [][]string) [][]string // on the synthetic rows
	raw    string                        // used instead when set
	opts   fbdi.Options
	want   []string // code() of each finding, in order
}

func checkCases() []checkCase {
	return []checkCase{
		{name: "synthetic sample is clean"},
		{name: "95-field row", mutate: func(r [][]string) [][]string { r[0] = r[0][:95]; return r },
			want: []string{"1::fields", "2:REFERENCE4:unbalanced-journal", "2:GROUP_ID:unbalanced-group", "0::unbalanced-file"}},
		{name: "empty DATE_CREATED", mutate: func(r [][]string) [][]string { r[1][cDateCreated] = ""; return r },
			want: []string{"2:DATE_CREATED:required"}},
		{name: "ISO date", mutate: func(r [][]string) [][]string { r[0][cAcctDate] = "2026-01-15"; return r },
			want: []string{"1:ACCOUNTING_DATE:date"}},
		{name: "day 30 of February", mutate: func(r [][]string) [][]string { r[2][cDateCreated] = "2024/02/30"; return r },
			want: []string{"3:DATE_CREATED:date"}},
		{name: "leap day", mutate: func(r [][]string) [][]string { r[2][cDateCreated] = "2024/02/29"; return r }},
		{name: "both DR and CR", mutate: func(r [][]string) [][]string { r[2][cCR] = "10.00"; return r },
			want: []string{"1:GROUP_ID:unbalanced-group", "3:ENTERED_CR:both-sides", "3:REFERENCE4:unbalanced-journal", "0::unbalanced-file"}},
		{name: "neither DR nor CR", mutate: func(r [][]string) [][]string { r[2][cDR] = ""; return r },
			want: []string{"1:GROUP_ID:unbalanced-group", "3:ENTERED_DR:no-side", "4:REFERENCE4:unbalanced-journal", "0::unbalanced-file"}},
		{name: "amount with 3 decimals", mutate: func(r [][]string) [][]string { r[2][cDR] = "10.001"; return r },
			want: []string{"1:GROUP_ID:unbalanced-group", "3:ENTERED_DR:amount", "4:REFERENCE4:unbalanced-journal", "0::unbalanced-file"}},
		{name: "amount with exponent", mutate: func(r [][]string) [][]string { r[2][cDR] = "1e1"; r[3][cCR] = "1e1"; return r },
			want: []string{"3:ENTERED_DR:amount", "4:ENTERED_CR:amount"}},
		{name: "zero amount", mutate: func(r [][]string) [][]string { r[2][cDR] = "0.00"; r[3][cCR] = "0"; return r },
			want: []string{"3:ENTERED_DR:zero", "4:ENTERED_CR:zero"}},
		{name: "zero amount allowed", mutate: func(r [][]string) [][]string { r[2][cDR] = "0.00"; r[3][cCR] = "0"; return r },
			opts: fbdi.Options{AllowZero: true}},
		{name: "negative amounts balance", mutate: func(r [][]string) [][]string { r[2][cDR] = "-10.00"; r[3][cCR] = "-10"; return r }},
		{name: "group unbalanced, file balanced",
			mutate: func(r [][]string) [][]string { r[2][cGroupID] = "700002"; r[3][cGroupID] = "700003"; return r },
			want: []string{"3:REFERENCE4:unbalanced-journal", "3:GROUP_ID:unbalanced-group",
				"4:REFERENCE4:unbalanced-journal", "4:GROUP_ID:unbalanced-group"}},
		{name: "journals unbalanced, group balanced",
			mutate: func(r [][]string) [][]string { r[3][cRef4] = "EPICHB-20260115-J0003"; return r },
			want:   []string{"3:REFERENCE4:unbalanced-journal", "4:REFERENCE4:unbalanced-journal"}},
		{name: "file unbalanced", mutate: func(r [][]string) [][]string { r[3][cCR] = "9.99"; return r },
			want: []string{"1:GROUP_ID:unbalanced-group", "3:REFERENCE4:unbalanced-journal", "0::unbalanced-file"}},
		{name: "each currency balances on its own",
			mutate: func(r [][]string) [][]string { r[2][cCurrency] = "CAD"; return r },
			want: []string{"1:GROUP_ID:unbalanced-group", "3:REFERENCE4:unbalanced-journal", "3:GROUP_ID:unbalanced-group",
				"4:REFERENCE4:unbalanced-journal", "0::unbalanced-file", "0::unbalanced-file"}},
		{name: "empty GROUP_ID is its own group", mutate: func(r [][]string) [][]string {
			for _, x := range r {
				x[cGroupID] = ""
			}
			return r
		}},
		{name: "GROUP_ID not a number", mutate: func(r [][]string) [][]string { r[0][cGroupID] = "70000A"; return r },
			want: []string{"1:GROUP_ID:value", "2:REFERENCE4:unbalanced-journal", "2:GROUP_ID:unbalanced-group", "0::unbalanced-file"}},
		{name: "GROUP_ID zero", mutate: func(r [][]string) [][]string {
			for _, x := range r {
				x[cGroupID] = "0"
			}
			return r
		}, want: []string{"1:GROUP_ID:value", "2:GROUP_ID:value", "3:GROUP_ID:value", "4:GROUP_ID:value"}},
		{name: "status not NEW", mutate: func(r [][]string) [][]string { r[1][cStatus] = "P"; return r },
			want: []string{"2:STATUS:value"}},
		{name: "header row", mutate: func(r [][]string) [][]string { c := fbdi.Columns(); return append([][]string{c[:]}, r...) },
			want: []string{"1:ACTUAL_FLAG:too-long", "1:STATUS:value", "1:LEDGER_ID:value", "1:ACCOUNTING_DATE:date",
				"1:DATE_CREATED:date", "1:CURRENCY_CONVERSION_DATE:date", "1:ACTUAL_FLAG:value",
				"1:ENTERED_DR:amount", "1:ENTERED_CR:amount", "1:ACCOUNTED_DR:amount", "1:ACCOUNTED_CR:amount",
				"1:ENTERED_CR:both-sides", "1:GROUP_ID:value"}},
		{name: "no ledger", mutate: func(r [][]string) [][]string { r[0][cLedgerID], r[0][cLedgerName] = "", ""; return r },
			want: []string{"1:LEDGER_ID:required"}},
		{name: "ledger name only", mutate: func(r [][]string) [][]string {
			for _, x := range r {
				x[cLedgerID] = ""
			}
			return r
		}},
		{name: "no source, bad flag, no segments", mutate: func(r [][]string) [][]string {
			r[0][cSource], r[0][cActualFlag] = "", "X"
			for i := range 30 {
				r[0][cSegment1+i] = ""
			}
			return r
		}, want: []string{"1:USER_JE_SOURCE_NAME:required", "1:ACTUAL_FLAG:value", "1:SEGMENT1:required"}},
		{name: "END marker", mutate: func(r [][]string) [][]string {
			for i := range r {
				r[i] = append(r[i], "END")
			}
			return r
		}},
		{name: "END marker on some rows", mutate: func(r [][]string) [][]string { r[1] = append(r[1], "END"); return r }},
		{name: "150 fields without END", mutate: func(r [][]string) [][]string { r[3] = append(r[3], "X"); return r },
			want: []string{"1:GROUP_ID:unbalanced-group", "3:REFERENCE4:unbalanced-journal", "4::fields", "0::unbalanced-file"}},
		{name: "quoted fields", mutate: func(r [][]string) [][]string {
			r[0][cRef10] = `"a, ""quoted"" description"`
			r[1][cDR-1] = ` "" `
			return r
		}},
		{name: "unterminated quote", mutate: func(r [][]string) [][]string { r[0][cRef10] = `"open`; return r },
			want: []string{"1::quote", "2:REFERENCE4:unbalanced-journal", "2:GROUP_ID:unbalanced-group", "0::unbalanced-file"}},
		{name: "text after closing quote", mutate: func(r [][]string) [][]string { r[1][cRef10] = `"a"b`; return r },
			want: []string{"1:REFERENCE4:unbalanced-journal", "1:GROUP_ID:unbalanced-group", "2::quote", "0::unbalanced-file"}},
		{name: "control character", mutate: func(r [][]string) [][]string { r[0][cRef10] = "bell\a"; return r },
			want: []string{"1:REFERENCE10:character"}},
		{name: "bare CR inside a line", mutate: func(r [][]string) [][]string { r[0][cRef10] = "a\rb"; return r },
			want: []string{"1:REFERENCE10:character"}},
		{name: "invalid UTF-8", mutate: func(r [][]string) [][]string { r[0][cRef10] = "caf\xe9"; return r },
			want: []string{"1:REFERENCE10:character"}},
		{name: "segment too long", mutate: func(r [][]string) [][]string { r[0][cSegment1] = strings.Repeat("1", 26); return r },
			want: []string{"1:SEGMENT1:too-long"}},
		{name: "CRLF line ends", raw: strings.ReplaceAll(string(mustRead()), "\n", "\r\n")},
		{name: "no final newline", raw: strings.TrimSuffix(string(mustRead()), "\n")},
		{name: "byte order mark", raw: "\ufeff" + string(mustRead()),
			want: []string{"1:STATUS:value"}},
		{name: "blank line", raw: strings.Replace(string(mustRead()), "\n", "\n\n", 1),
			want: []string{"2::fields"}},
		{name: "empty file", raw: "", want: []string{"0::required"}},
		{name: "garbage", raw: "PK\x03\x04\x00\x00,\"\n\x00",
			want: []string{"1::quote", "2::fields"}},
	}
}

func mustRead() []byte {
	b, err := os.ReadFile(samplePath)
	if err != nil {
		panic(err)
	}
	return b
}

func (tc checkCase) input(t testing.TB) string {
	if tc.mutate == nil {
		if tc.raw != "" || tc.name == "empty file" {
			return tc.raw
		}
		return string(sample(t))
	}
	return join(tc.mutate(syntheticRecords(t)))
}

func TestCheckFindings(t *testing.T) {
	for _, tc := range checkCases() {
		t.Run(tc.name, func(t *testing.T) {
			rep, err := fbdi.CheckCSV(context.Background(), strings.NewReader(tc.input(t)), tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			got := codes(rep.Findings)
			if !slices.Equal(got, tc.want) {
				t.Errorf("findings\n got %q\nwant %q", got, tc.want)
				for _, f := range rep.Findings {
					t.Log(f)
				}
			}
			if rep.OK() != (len(tc.want) == 0) || (rep.Err() == nil) != rep.OK() {
				t.Errorf("OK() = %v, Err() = %v", rep.OK(), rep.Err())
			}
		})
	}
}

// TestCheckSynthetic: the in-repo sample is well formed and balanced — both
// journals (J0002's 10.00 DR is offset by a 10.00 CR) and the one group
// they share. Its bad account 99999 is for the simulator's EF04, beyond
// Check's reach.
func TestCheckSynthetic(t *testing.T) {
	f, err := os.Open(samplePath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	rep, err := fbdi.Check(context.Background(), f, st.Size(), fbdi.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK() || rep.Lines != 4 || rep.Entry != "" {
		t.Fatalf("report %+v", rep)
	}
	tot := rep.Totals
	if tot.Lines != 4 || tot.DR != 85217 || tot.CR != 85217 || len(tot.Groups) != 1 || len(tot.Journals) != 2 {
		t.Fatalf("totals %+v", tot)
	}
	if j := tot.Journals[1]; j.Journal != "SYNHB-20260212-J0002" || j.DR != 1000 || j.CR != 1000 {
		t.Fatalf("J0002 %+v", j)
	}
}

// TestCheckRoundTrip: whatever the Writer writes, Check passes, with the
// same totals.
func TestCheckRoundTrip(t *testing.T) {
	var lines []*fbdi.Line
	for i := range 500 {
		for _, l := range syntheticLines() {
			l.GroupID = fbdi.GroupID(l.JournalName + ":" + string(rune('a'+i%26)))
			l.LineDescription = `desc, with "quotes" ` + strings.Repeat("x", i%7)
			lines = append(lines, l)
		}
	}
	for _, o := range []fbdi.Options{{}, {WithEND: true}} {
		z, wrote := write(t, o, lines)
		rep, err := fbdi.Check(context.Background(), bytes.NewReader(z), int64(len(z)), fbdi.Options{})
		if err != nil || !rep.OK() || rep.Entry != fbdi.DefaultEntry {
			t.Fatalf("Check: %v %v", err, rep.Err())
		}
		if rep.Lines != len(lines) || rep.Totals.Lines != wrote.Lines || rep.Totals.DR != wrote.DR ||
			!equalSlices(rep.Totals.Groups, wrote.Groups) || !equalSlices(rep.Totals.Journals, wrote.Journals) {
			t.Fatalf("check totals %+v\nwriter totals %+v", rep.Totals, wrote)
		}
		// The same content as a bare CSV.
		csv := unzip(t, z, fbdi.DefaultEntry)
		rep, err = fbdi.Check(context.Background(), bytes.NewReader(csv), int64(len(csv)), fbdi.Options{})
		if err != nil || !rep.OK() || rep.Entry != "" || rep.Lines != len(lines) {
			t.Fatalf("Check on the CSV: %v %+v", err, rep)
		}
	}
}

func TestCheckZipErrors(t *testing.T) {
	ctx := context.Background()
	if _, err := fbdi.Check(ctx, strings.NewReader("PK\x03\x04 broken"), 12, fbdi.Options{}); err == nil {
		t.Error("broken zip accepted")
	}
	z, _ := write(t, fbdi.Options{Entry: "notes.txt"}, syntheticLines())
	_, err := fbdi.Check(ctx, bytes.NewReader(z), int64(len(z)), fbdi.Options{})
	if !errors.Is(err, fbdi.ErrNoEntry) {
		t.Errorf("zip without csv: %v", err)
	}
}

func TestCheckMaxFindings(t *testing.T) {
	bad := strings.Repeat("x\n", 50)
	rep, err := fbdi.CheckCSV(context.Background(), strings.NewReader(bad), fbdi.Options{MaxFindings: 10})
	if err != nil || len(rep.Findings) != 10 || rep.Omitted != 40 || rep.OK() {
		t.Fatalf("capped: %v, %d kept, %d omitted", err, len(rep.Findings), rep.Omitted)
	}
	rep, _ = fbdi.CheckCSV(context.Background(), strings.NewReader(bad), fbdi.Options{MaxFindings: -1})
	if len(rep.Findings) != 50 {
		t.Fatalf("uncapped: %d", len(rep.Findings))
	}
}

func TestCheckLongLine(t *testing.T) {
	in := "x" + strings.Repeat(",", fbdi.MaxLineBytes) + "\n" + string(sample(t))
	rep, err := fbdi.CheckCSV(context.Background(), strings.NewReader(in), fbdi.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got := codes(rep.Findings); !slices.Equal(got, []string{"1::line-too-long"}) || rep.Totals.Lines != 4 {
		t.Fatalf("findings %v, lines %d", got, rep.Totals.Lines)
	}
}

func TestCheckContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := fbdi.CheckCSV(ctx, strings.NewReader(string(sample(t))), fbdi.Options{})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Check with canceled context = %v", err)
	}
}

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, errors.New("connection reset") }

func TestCheckReadError(t *testing.T) {
	_, err := fbdi.CheckCSV(context.Background(), io.MultiReader(strings.NewReader("NEW,1\n"), errReader{}), fbdi.Options{})
	if err == nil || !strings.Contains(err.Error(), "connection reset") {
		t.Fatalf("Check = %v", err)
	}
}

func TestLineErrorMessage(t *testing.T) {
	for _, tc := range []struct {
		e    *fbdi.LineError
		want string
	}{
		{&fbdi.LineError{Line: 3, Column: "ENTERED_DR", Err: fbdi.ErrBothSides}, "fbdi: line 3: ENTERED_DR: both ENTERED_DR and ENTERED_CR set"},
		{&fbdi.LineError{Line: 3, Err: fbdi.ErrFieldCount}, "fbdi: line 3: wrong number of fields"},
		{&fbdi.LineError{Err: &fbdi.UnbalancedError{Scope: fbdi.ScopeFile, Currency: "USD", DR: 100, CR: 99}},
			"fbdi: file: file unbalanced in USD: DR 1.00, CR 0.99"},
		{&fbdi.LineError{Line: 7, Column: "REFERENCE4", Err: &fbdi.UnbalancedError{Scope: fbdi.ScopeJournal, GroupID: 5, Currency: "USD", Journal: "J1", DR: 1}},
			`fbdi: line 7: REFERENCE4: journal "J1" of group 5 unbalanced in USD: DR 0.01, CR 0.00`},
	} {
		if got := tc.e.Error(); got != tc.want {
			t.Errorf("Error() = %q, want %q", got, tc.want)
		}
	}
	if !errors.Is(&fbdi.LineError{Err: &fbdi.UnbalancedError{}}, fbdi.ErrUnbalanced) {
		t.Error("UnbalancedError does not match ErrUnbalanced")
	}
}
