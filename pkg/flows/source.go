package flows

import "strings"

// SourceCode is the SourceCode Sinew gives a flow's transactions in Fusion
// ("EPIC-WILLOW" for willow-inventory): one per flow, so that each flow's
// rows can be read back and reconciled apart from the others'.
func SourceCode(flowID string) string {
	name, _, _ := strings.Cut(flowID, "-")
	return "EPIC-" + strings.ToUpper(name)
}
