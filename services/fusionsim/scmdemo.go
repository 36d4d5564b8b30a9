package fusionsim

// demoSCM is deploy/demo/fusion_scm.yaml, the simulator's default SCM and
// procurement master data (a test keeps the two equal).
const demoSCM = `# fusionsim's SCM and procurement master data for make run and the tests
# (services/fusionsim keeps a built-in copy: keep both the same).
# Format: docs/fusionsim.md, "SCM master data".
organizations:
  - code: MAIN
    name: Main Hospital
    subinventories: [PHARM-MAIN, PHARM-ED, OR-CORE, LAB-CORE]
uoms:
  - {code: EA, name: Each}
  - {code: ML, name: Milliliter}
  - {code: BX, name: Box}
# sign: -1 quantities must be negative, 1 positive, 0 either (never zero).
transaction_types:
  - {name: Miscellaneous Issue, sign: -1}
  - {name: Miscellaneous Receipt, sign: 1}
  - {name: Account Alias Issue, sign: -1}
  - {name: Account Alias Receipt, sign: 1}
items:
  - {number: RX-1001, organization: MAIN, description: "Ondansetron 4 mg/2 mL injection", uom: EA, class: Pharmacy, program_340b: true}
  - {number: RX-1002, organization: MAIN, description: "Ceftriaxone 1 g vial", uom: EA, class: Pharmacy, program_340b: true}
  - {number: RX-1003, organization: MAIN, description: "Heparin 5,000 units/mL 1 mL vial", uom: EA, class: Pharmacy, program_340b: true}
  - {number: RX-1004, organization: MAIN, description: "Acetaminophen 500 mg tablet", uom: EA, class: Pharmacy, program_340b: true}
  - {number: SUP-2001, organization: MAIN, description: "Laparoscopic trocar 12 mm", uom: EA, class: Surgical Supplies}
  - {number: SUP-2002, organization: MAIN, description: "Suture 3-0 absorbable", uom: BX, class: Surgical Supplies}
  - {number: IMP-3001, organization: MAIN, description: "Hip stem, cemented, size 4", uom: EA, class: Implants, lot_controlled: true, serial_controlled: true}
  - {number: IMP-3002, organization: MAIN, description: "Cortical bone screw 4.5 mm", uom: EA, class: Implants, lot_controlled: true}
  - {number: LAB-4001, organization: MAIN, description: "CBC reagent pack", uom: EA, class: Laboratory}
  - {number: LAB-4002, organization: MAIN, description: "Glucose reagent", uom: ML, class: Laboratory}
suppliers:
  - number: "9001"
    name: Acme Medical Supply
    sites:
      - {site: ACME-MAIN, procurement_bu: Main Hospital BU, address_line1: 100 Industrial Way, city: Springfield, postal_code: "62701", country: US}
# On-hand quantity of every item in every subinventory of its organization
# at start (and after /sim/reset).
starting_onhand: "1000"
`

// DemoSCM returns the built-in master data (deploy/demo/fusion_scm.yaml).
func DemoSCM() string { return demoSCM }
