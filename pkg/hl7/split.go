package hl7

import (
	"bytes"
	"fmt"
	"strconv"
)

// Batch is the FHS/BHS envelope found around messages, if any.
type Batch struct {
	FHS, BHS, BTS, FTS []byte // the envelope segments, nil when absent
	// DeclaredCount is BTS-1 (messages in the batch), -1 when not stated.
	DeclaredCount int
	Warnings      []Warning
}

// Split cuts data — a file, an MLLP frame, a batch — into messages, each
// a sub-slice of data starting at its MSH. FHS/BHS/BTS/FTS segments are
// returned in the Batch (nil when there is no envelope); a missing trailer
// or a count that disagrees is a warning, not an error.
func Split(data []byte) ([][]byte, *Batch, error) {
	var msgs [][]byte
	var b *Batch
	envelope := func() *Batch {
		if b == nil {
			b = &Batch{DeclaredCount: -1}
		}
		return b
	}
	start := -1 // start of the current message
	closeMsg := func(end int) {
		if start >= 0 {
			if m := bytes.TrimRight(data[start:end], "\r\n \t"); len(m) > 0 {
				msgs = append(msgs, m)
			}
			start = -1
		}
	}
	for pos := 0; pos < len(data); {
		eol := pos
		for eol < len(data) && data[eol] != '\r' && data[eol] != '\n' {
			eol++
		}
		line := data[pos:eol]
		if pos == 0 {
			// A BOM stays with the first message, so Parse can report it.
			line = bytes.TrimPrefix(line, bom)
		}
		name := ""
		if len(line) >= 4 && !isAlnum(line[3]) {
			name = string(line[:3])
		}
		switch name {
		case "MSH":
			closeMsg(pos)
			start = pos
		case "FHS", "BHS", "BTS", "FTS":
			closeMsg(pos)
			env := envelope()
			switch name {
			case "FHS":
				env.FHS = line
			case "BHS":
				env.BHS = line
			case "BTS":
				env.BTS = line
				f := bytes.Split(line, line[3:4])
				if len(f) > 1 {
					if n, err := strconv.Atoi(string(bytes.TrimSpace(f[1]))); err == nil {
						env.DeclaredCount = n
					}
				}
			case "FTS":
				env.FTS = line
			}
		default:
			if start < 0 && len(bytes.TrimSpace(line)) > 0 {
				return nil, b, fmt.Errorf("hl7: split: %s at byte %d is outside any message", lineName(line), pos)
			}
		}
		pos = eol
		for pos < len(data) && (data[pos] == '\r' || data[pos] == '\n') {
			pos++
		}
	}
	closeMsg(len(data))
	if b != nil {
		if b.BHS != nil && b.BTS == nil {
			b.Warnings = append(b.Warnings, Warning{Code: "batch-no-trailer", Detail: "BHS without BTS"})
		}
		if b.FHS != nil && b.FTS == nil {
			b.Warnings = append(b.Warnings, Warning{Code: "file-no-trailer", Detail: "FHS without FTS"})
		}
		if b.DeclaredCount >= 0 && b.DeclaredCount != len(msgs) {
			b.Warnings = append(b.Warnings, Warning{Code: "batch-count",
				Detail: fmt.Sprintf("BTS-1 says %d messages, found %d", b.DeclaredCount, len(msgs))})
		}
	}
	if len(msgs) == 0 {
		return nil, b, fmt.Errorf("hl7: split: no MSH segment found")
	}
	return msgs, b, nil
}

// lineName names a line for an error without quoting its content, which
// may be PHI: its segment name when it starts with one, else its length.
func lineName(line []byte) string {
	if len(line) >= 3 && isSegName(line[:3]) && (len(line) == 3 || !isSegName(line[3:4])) {
		return "segment " + string(line[:3])
	}
	return "a line of " + strconv.Itoa(len(line)) + " bytes"
}
