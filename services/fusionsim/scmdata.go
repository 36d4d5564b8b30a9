package fusionsim

import (
	"fmt"
	"os"

	"gopkg.in/yaml.v3"

	"github.com/sinewhq/sinew/pkg/fusion"
)

// SCMData is the SCM and procurement master data (deploy/demo/fusion_scm.yaml).
type SCMData struct {
	Organizations    []SCMOrganization    `yaml:"organizations" json:"organizations"`
	UOMs             []SCMUOM             `yaml:"uoms" json:"uoms"`
	TransactionTypes []SCMTransactionType `yaml:"transaction_types" json:"transactionTypes"`
	Items            []SCMItem            `yaml:"items" json:"items"`
	Suppliers        []SCMSupplier        `yaml:"suppliers" json:"suppliers"`
	// StartingOnhand is every item's quantity in every subinventory of its
	// organization at start; "0" or empty: no balances.
	StartingOnhand string `yaml:"starting_onhand" json:"startingOnhand"`
}

// SCMOrganization is an inventory organization and its subinventories.
type SCMOrganization struct {
	Code           string   `yaml:"code" json:"code"`
	Name           string   `yaml:"name" json:"name"`
	Subinventories []string `yaml:"subinventories" json:"subinventories"`
}

// SCMUOM is a unit of measure: code (EA) and name (Each).
type SCMUOM struct {
	Code string `yaml:"code" json:"code"`
	Name string `yaml:"name" json:"name"`
}

// SCMTransactionType is a transaction type with the sign its quantities
// must have (-1, 1, or 0 for either).
type SCMTransactionType struct {
	Name string `yaml:"name" json:"name"`
	Sign int    `yaml:"sign" json:"sign"`
}

// SCMItem is an item of an organization.
type SCMItem struct {
	Number           string `yaml:"number"`
	Organization     string `yaml:"organization"`
	Description      string `yaml:"description"`
	UOM              string `yaml:"uom"`
	Class            string `yaml:"class"`
	Status           string `yaml:"status"` // Active when empty
	LotControlled    bool   `yaml:"lot_controlled"`
	SerialControlled bool   `yaml:"serial_controlled"`
	Program340B      bool   `yaml:"program_340b"`
}

// SCMSupplier is a supplier with its sites.
type SCMSupplier struct {
	Number string    `yaml:"number"`
	Name   string    `yaml:"name"`
	Status string    `yaml:"status"` // ACTIVE when empty
	Sites  []SCMSite `yaml:"sites"`
}

// SCMSite is a supplier site with its address.
type SCMSite struct {
	Site          string `yaml:"site"`
	ProcurementBU string `yaml:"procurement_bu"`
	AddressLine1  string `yaml:"address_line1"`
	City          string `yaml:"city"`
	PostalCode    string `yaml:"postal_code"`
	Country       string `yaml:"country"`
}

// loadSCM reads the master data: SCMYAML, SCMPath, or the built-in copy of
// deploy/demo/fusion_scm.yaml; StartingOnhand overrides the file's.
func loadSCM(cfg SimConfig) (*SCMData, error) {
	src := []byte(demoSCM)
	switch {
	case cfg.SCMYAML != "":
		src = []byte(cfg.SCMYAML)
	case cfg.SCMPath != "":
		b, err := os.ReadFile(cfg.SCMPath)
		if err != nil {
			return nil, fmt.Errorf("fusionsim: scm master data: %w", err)
		}
		src = b
	}
	var d SCMData
	if err := yaml.Unmarshal(src, &d); err != nil {
		return nil, fmt.Errorf("fusionsim: scm master data: %w", err)
	}
	if cfg.StartingOnhand != "" {
		d.StartingOnhand = cfg.StartingOnhand
	}
	if err := d.check(); err != nil {
		return nil, fmt.Errorf("fusionsim: scm master data: %w", err)
	}
	return &d, nil
}

func (d *SCMData) check() error {
	if d.StartingOnhand != "" {
		q, err := fusion.ParseDecimal(d.StartingOnhand)
		if err != nil {
			return fmt.Errorf("starting_onhand: %w", err)
		}
		d.StartingOnhand = string(q)
	}
	orgs, uoms := map[string]bool{}, map[string]bool{}
	for _, o := range d.Organizations {
		if o.Code == "" {
			return fmt.Errorf("organization %+v without code", o)
		}
		orgs[o.Code] = true
	}
	for _, u := range d.UOMs {
		if u.Code == "" {
			return fmt.Errorf("uom %+v without code", u)
		}
		uoms[u.Code] = true
	}
	for _, t := range d.TransactionTypes {
		if t.Name == "" || t.Sign < -1 || t.Sign > 1 {
			return fmt.Errorf("transaction type %+v: want a name and sign -1, 0 or 1", t)
		}
	}
	seen := map[string]bool{}
	for _, it := range d.Items {
		if it.Number == "" || !orgs[it.Organization] || !uoms[it.UOM] {
			return fmt.Errorf("item %q: needs a number, a known organization (%q) and uom (%q)", it.Number, it.Organization, it.UOM)
		}
		k := it.Organization + "/" + it.Number
		if seen[k] {
			return fmt.Errorf("item %s twice", k)
		}
		seen[k] = true
	}
	for _, s := range d.Suppliers {
		if s.Number == "" || s.Name == "" {
			return fmt.Errorf("supplier %+v: number and name are required", s)
		}
	}
	return nil
}
