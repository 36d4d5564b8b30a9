package hl7

// CheckRequired returns the first required MSH field the message lacks, as
// an error to answer with (table 0357 code 101), or nil. MSH-9 (message
// type) is required: without it a message cannot be routed, and storing it
// under "none" would acknowledge what nobody will process. MSH-10 is not
// checked here: a message without a control id is identified by its body
// (see WarnNoControlID). The error names the field, never its value.
func (m *Message) CheckRequired() *ParseError {
	f := m.Field("MSH", 9)
	if len(f) == 0 {
		return &ParseError{Segment: "MSH", SegmentSeq: 1, Field: 9, Code: CodeRequiredField,
			Msg: "MSH-9 (message type) is required"}
	}
	if len(m.comp("MSH", 9, 1)) == 0 {
		return &ParseError{Segment: "MSH", SegmentSeq: 1, Field: 9, Component: 1, Code: CodeRequiredField,
			Msg: "MSH-9-1 (message code) is required"}
	}
	return nil
}
