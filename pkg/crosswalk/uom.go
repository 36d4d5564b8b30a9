package crosswalk

import "strings"

// UnitFactor returns the factor that converts a quantity of item counted
// in Epic's unit to the item's Fusion UOM (Fusion quantity = Epic quantity
// × factor), as the exact decimal the crosswalk holds:
//
//   - the item row's factor (1 when empty) when unit is the row's epic_uom,
//     or when unit is empty and the row names an epic_uom;
//   - 1 when unit is empty or already the item's Fusion UOM;
//   - else the uom table's factor for unit → the item's Fusion UOM.
//
// ok is false when nothing converts unit. uom may be nil; buf is scratch
// space for the lookup. The HL7 mappers and the on-hand reconciliation
// both convert through it, so a count and a transaction agree.
func UnitFactor(buf []byte, item *Row, uom *Codes, unit string) (factor string, ok bool) {
	fusion, epic, f := item.Values[ItemFusionUOM], item.Values[ItemEpicUOM], item.Values[ItemFactor]
	if f == "" {
		f = "1"
	}
	switch {
	case unit == "" && epic != "":
		return f, true
	case unit == "" || strings.EqualFold(unit, fusion):
		return "1", true
	case epic != "" && strings.EqualFold(unit, epic):
		return f, true
	}
	if uom != nil {
		if r := uom.Lookup(buf, []byte(unit), []byte(fusion)); r != nil {
			return r.Values[UOMFactor], true
		}
	}
	return "", false
}
