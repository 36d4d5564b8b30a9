package fusionsim

import (
	"net/http"
	"strconv"
	"strings"
)

// firstCombinationID numbers the chart's combinations (_CODE_COMBINATION_ID).
const firstCombinationID = 300000100000001

// combinationsGet serves accountCombinationsLOV: the chart's valid
// combinations, enabled, with their segments, paged; q filters on
// EnabledFlag and _SEGMENTn.
func (s *Server) combinationsGet(w http.ResponseWriter, r *http.Request) {
	q := queryParams(r)
	limit, offset, err := paging(q)
	if err != nil {
		badRequest(w, "%v", err)
		return
	}
	f, err := qFilter(q["q"])
	if err != nil {
		badRequest(w, "%v", err)
		return
	}
	items := []any{}
	for i, combo := range s.chart.combos {
		item := map[string]any{
			"_CODE_COMBINATION_ID": firstCombinationID + int64(i),
			"EnabledFlag":          "Y",
			"AccountType":          accountType(combo),
			"ConcatenatedSegments": strings.Join(combo, "-"),
		}
		match := f["EnabledFlag"] == "" || f["EnabledFlag"] == "Y"
		for n, v := range combo {
			name := "_SEGMENT" + strconv.Itoa(n+1)
			item[name] = v
			if want, ok := f[name]; ok && want != v {
				match = false
			}
		}
		if match {
			items = append(items, item)
		}
	}
	writeJSON(w, http.StatusOK, collection(r, q, items, limit, offset))
}

// accountType is a plausible account type from the natural account (the
// third segment in the demo chart): 1xxxx asset, 4xxxx revenue.
func accountType(combo []string) string {
	if len(combo) < 3 || combo[2] == "" {
		return "E"
	}
	switch combo[2][0] {
	case '1':
		return "A"
	case '2':
		return "L"
	case '3':
		return "O"
	case '4':
		return "R"
	}
	return "E"
}
