package flows

// EncounterCheck names where an Epic instance keeps what the
// optime-encounters check reads on an Encounter. Both are per site: Epic's
// OIDs carry the customer's deployment id.
type EncounterCheck struct {
	// CaseIdentifier is the Encounter.identifier system whose value is the
	// OpTime case (surgical log) id, the id case carts carry (ZCS-1).
	CaseIdentifier string `yaml:"case_identifier"`
	// ImplantsExtension is the URL of the Encounter extension whose
	// valueInteger counts the implants logged for the case.
	ImplantsExtension string `yaml:"implants_extension"`
}

// ExpectedUse is the reagent each lab test uses on each instrument: tests
// resulted per instrument and day times Use give the day's expected
// consumption, compared with what the Beaker flow posted to Fusion.
type ExpectedUse struct {
	Use []ReagentUse `yaml:"use"`
}

// ReagentUse is one test on one instrument and the reagent it consumes.
type ReagentUse struct {
	// Device is the instrument: Observation.device's identifier value.
	Device string `yaml:"device"`
	// Test is the Observation's LOINC code.
	Test string `yaml:"test"`
	// Reagent is Beaker's reagent code (ZRG-1, the command's epic_code).
	Reagent string `yaml:"reagent"`
	// PerTest is an exact decimal quantity in UOM, Fusion's unit of the
	// reagent's item (the unit the commands carry after conversion).
	PerTest string `yaml:"per_test"`
	UOM     string `yaml:"uom"`
}
