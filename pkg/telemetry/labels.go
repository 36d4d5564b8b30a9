package telemetry

// Label values must never carry a value from a message: a label is a name
// Sinew chose (a flow id from flows.yaml, a consumer, an outcome, a status
// code). SafeLabel is the last check on the few that are read from data
// (a flow id in an envelope, an HL7 message type): anything that does not
// look like such a name is counted as "other", so a hostile or mistaken
// value can neither leak into a series nor multiply them.

// maxLabel bounds a label value; flow ids and codes are far shorter.
const maxLabel = 48

// SafeLabel returns s when it is a short name of ASCII letters, digits and
// '-', '_', '.', ':' or '^' (flow ids, HL7 types like RDS^O13, status
// codes); "none" when s is empty; "other" otherwise.
func SafeLabel(s string) string {
	if s == "" {
		return "none"
	}
	if len(s) > maxLabel {
		return "other"
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case c == '-' || c == '_' || c == '.' || c == ':' || c == '^':
		default:
			return "other"
		}
	}
	return s
}

// StatusClass is an HTTP status code's class: "2xx" … "5xx", or "error"
// when no answer came (code 0: a timeout, a refused connection).
func StatusClass(code int) string {
	if code < 100 || code > 599 {
		return "error"
	}
	return string(rune('0'+code/100)) + "xx"
}
