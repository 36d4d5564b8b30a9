package fhir

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
)

// Capabilities is what a server's CapabilityStatement says it does, the
// parts Sinew's choice of sync mode reads.
type Capabilities struct {
	Types map[string]TypeCapabilities
	// Export: a Group (or system) $export operation is declared.
	Export bool
	// Topics are the subscription topics the server offers (Backport
	// extension on the Subscription resource), canonical → true.
	Topics map[string]bool
	// SubscriptionEvents: Subscription $events is declared.
	SubscriptionEvents bool
}

// TypeCapabilities is one resource type's entry.
type TypeCapabilities struct {
	Read, Search bool
	// SearchParams maps a search parameter's name to its type (date, token, ...).
	SearchParams map[string]string
}

// Searchable reports whether typ can be searched on the date parameter param.
func (c *Capabilities) Searchable(typ, param string) bool {
	t, ok := c.Types[typ]
	return ok && t.Search && t.SearchParams[param] == "date"
}

// ParseCapabilityStatement reads a CapabilityStatement's rest server part.
func ParseCapabilityStatement(raw []byte) (*Capabilities, error) {
	r, err := Parse(raw, ParseOptions{AllowNoID: true})
	if err != nil {
		return nil, err
	}
	if r.Type != "CapabilityStatement" {
		return nil, &Error{Code: "invalid", Path: "resourceType", Msg: "not a CapabilityStatement"}
	}
	type op struct {
		Name       string `json:"name"`
		Definition string `json:"definition"`
	}
	var cs struct {
		Rest []struct {
			Mode     string `json:"mode"`
			Resource []struct {
				Type      string `json:"type"`
				Extension []struct {
					URL            string `json:"url"`
					ValueCanonical string `json:"valueCanonical"`
				} `json:"extension"`
				Interaction []struct {
					Code string `json:"code"`
				} `json:"interaction"`
				SearchParam []struct {
					Name string `json:"name"`
					Type string `json:"type"`
				} `json:"searchParam"`
				Operation []op `json:"operation"`
			} `json:"resource"`
			Operation []op `json:"operation"`
		} `json:"rest"`
	}
	if err := json.Unmarshal(raw, &cs); err != nil {
		return nil, &Error{Code: "structure", Path: "CapabilityStatement.rest", Msg: "elements of the wrong JSON type"}
	}
	c := &Capabilities{Types: map[string]TypeCapabilities{}, Topics: map[string]bool{}}
	isExport := func(o op) bool {
		return o.Name == "export" || strings.HasSuffix(o.Definition, "/group-export") || strings.HasSuffix(o.Definition, "/export")
	}
	for _, rest := range cs.Rest {
		if rest.Mode != "" && rest.Mode != "server" {
			continue
		}
		for _, o := range rest.Operation {
			c.Export = c.Export || isExport(o)
		}
		for _, res := range rest.Resource {
			tc := TypeCapabilities{SearchParams: map[string]string{}}
			for _, in := range res.Interaction {
				switch in.Code {
				case "read":
					tc.Read = true
				case "search-type":
					tc.Search = true
				}
			}
			for _, sp := range res.SearchParam {
				tc.SearchParams[sp.Name] = sp.Type
			}
			for _, o := range res.Operation {
				c.Export = c.Export || (res.Type == "Group" && isExport(o))
				if res.Type == "Subscription" && (o.Name == OperationEvents || strings.HasSuffix(o.Definition, "-events")) {
					c.SubscriptionEvents = true
				}
			}
			if res.Type == "Subscription" {
				for _, e := range res.Extension {
					if e.URL == ExtTopicCanonical && e.ValueCanonical != "" {
						c.Topics[e.ValueCanonical] = true
					}
				}
			}
			c.Types[res.Type] = tc
		}
	}
	return c, nil
}

// Capabilities GETs base/metadata.
func (c *Client) Capabilities(ctx context.Context, base string) (*Capabilities, error) {
	u := strings.TrimRight(base, "/") + "/metadata"
	resp, err := c.do(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, failure("metadata", resp)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return nil, &OutcomeError{Op: "metadata", Status: resp.StatusCode, Class: Retryable}
	}
	return ParseCapabilityStatement(body)
}
