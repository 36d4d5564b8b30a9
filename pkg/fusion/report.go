package fusion

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"path"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// ReportTitle is the first line of a Journal Import execution report (the
// .out of "Import Journals: Child") in the layout ParseImportReport reads.
//
// Real pods produce a formatted report whose layout is not a contract;
// production reads GL_INTERFACE errors through a BI report. This layout is
// Sinew's (fusionsim writes it; docs/fusionsim.md describes it):
//
//	Journal Import Execution Report
//	Request ID: 10075842
//	Total: 2 group id(s)
//	GROUP 700001 POSTED lines=2
//	GROUP 700002 HELD lines=2 errors=1
//	ERROR 700002 "EPIC:HB:20260115:0002:1" "EF04" "FLEX-VALUE DOES NOT EXIST (SEGMENT=3) (VALUESET=ACCOUNT) (VALUE=99999)"
//	WARNING "WU01" "Journal entry is unbalanced (group 700001, journal J1)"
//	End of report
//
// Quoted fields are Go string literals.
const ReportTitle = "Journal Import Execution Report"

// ImportReport is what one Journal Import run did.
type ImportReport struct {
	RequestID string
	Groups    int // "Total: N group id(s)": 0 means the run selected nothing
	Errors    []LineError
	Warnings  []string
	// Posted and Held list the GROUP_IDs that became journals and those
	// held back by an error line (every line of a held group stays in
	// GL_INTERFACE). Empty when the report carries no GROUP lines.
	Posted, Held []int64
}

// LineError is one GL_INTERFACE line Journal Import rejected.
type LineError struct {
	GroupID     int64
	Reference21 string
	Code        string // STATUS: one code or a comma-separated list (EF04,EC03)
	Text        string // STATUS_DESCRIPTION
}

var totalRE = regexp.MustCompile(`Total:\s*(\d+)\s+group id\(s\)`)

// ParseImportReport reads the files of DownloadExecutionDetails: the
// execution report (.out) when present, else the log, which at least says
// how many groups the run selected.
func ParseImportReport(files map[string][]byte) (*ImportReport, error) {
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		b := files[n]
		if strings.HasSuffix(n, ".out") && bytes.HasPrefix(bytes.TrimLeft(b, "\ufeff \r\n"), []byte(ReportTitle)) {
			rep, err := parseOut(b)
			if err != nil {
				return nil, fmt.Errorf("fusion: report %s: %w", n, err)
			}
			if rep.RequestID == "" {
				rep.RequestID = strings.TrimSuffix(path.Base(n), ".out")
			}
			return rep, nil
		}
	}
	for _, n := range names {
		if !strings.HasSuffix(n, ".log") {
			continue
		}
		if m := totalRE.FindSubmatch(files[n]); m != nil {
			g, _ := strconv.Atoi(string(m[1]))
			return &ImportReport{RequestID: strings.TrimSuffix(path.Base(n), ".log"), Groups: g}, nil
		}
	}
	return nil, errors.New("fusion: no Journal Import report or log among the files")
}

func parseOut(b []byte) (*ImportReport, error) {
	rep := &ImportReport{Groups: -1}
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	n := 0
	for sc.Scan() {
		n++
		line := strings.TrimRight(sc.Text(), "\r")
		word, rest, _ := strings.Cut(line, " ")
		switch {
		case strings.HasPrefix(line, "Request ID:"):
			rep.RequestID = strings.TrimSpace(strings.TrimPrefix(line, "Request ID:"))
		case totalRE.MatchString(line):
			m := totalRE.FindStringSubmatch(line)
			rep.Groups, _ = strconv.Atoi(m[1])
		case word == "GROUP":
			f := strings.Fields(rest)
			if len(f) < 2 {
				return nil, fmt.Errorf("line %d: malformed GROUP line", n)
			}
			g, err := strconv.ParseInt(f[0], 10, 64)
			if err != nil {
				return nil, fmt.Errorf("line %d: GROUP_ID: %w", n, err)
			}
			switch f[1] {
			case "POSTED":
				rep.Posted = append(rep.Posted, g)
			case "HELD":
				rep.Held = append(rep.Held, g)
			}
		case word == "ERROR":
			gs, q, _ := strings.Cut(rest, " ")
			g, err := strconv.ParseInt(gs, 10, 64)
			if err != nil {
				return nil, fmt.Errorf("line %d: GROUP_ID: %w", n, err)
			}
			f, err := quoted(q, 3)
			if err != nil {
				return nil, fmt.Errorf("line %d: %w", n, err)
			}
			rep.Errors = append(rep.Errors, LineError{GroupID: g, Reference21: f[0], Code: f[1], Text: f[2]})
		case word == "WARNING":
			f, err := quoted(rest, 2)
			if err != nil {
				return nil, fmt.Errorf("line %d: %w", n, err)
			}
			rep.Warnings = append(rep.Warnings, f[0]+": "+f[1])
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if rep.Groups < 0 {
		return nil, errors.New(`no "Total: N group id(s)" line`)
	}
	return rep, nil
}

// quoted reads n space-separated Go string literals from s.
func quoted(s string, n int) ([]string, error) {
	out := make([]string, 0, n)
	for range n {
		s = strings.TrimLeft(s, " ")
		q, err := strconv.QuotedPrefix(s)
		if err != nil {
			return nil, fmt.Errorf("want %d quoted fields: %w", n, err)
		}
		v, _ := strconv.Unquote(q)
		out = append(out, v)
		s = s[len(q):]
	}
	return out, nil
}
