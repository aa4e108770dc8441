package clinical

import (
	"context"
	"net/url"
	"strings"
	"time"

	"carefront/internal/access"
	"carefront/internal/fhir"
)

// A result is released with its report: a genetic or pathology report's
// Observations often carry the plain "laboratory" category, and must not
// show while the patient waits for the report's review, nor wait when the
// report is reviewed or asked for. So when the patient has chosen to wait
// for any kind of result, an Observation that is a result of a report is
// held exactly as long as its report is.

// waits reports whether the principal's patient chose to wait for any
// kind of result.
func waits(p access.Principal) bool {
	if p.Policy == nil {
		return false
	}
	for _, d := range p.Policy.Wait {
		if d > 0 {
			return true
		}
	}
	return false
}

// reportChunk bounds the Observations one report lookup names (an EHR's
// URL length).
const reportChunk = 40

// reportHolds returns, for each of obs that is a result of a report the
// principal may read, whether that report is held at now ("Observation/id"
// -> held). Observations of no report are absent.
func (g *Gateway) reportHolds(ctx context.Context, req Request, obs []*fhir.Resource, now time.Time) (map[string]bool, error) {
	out := map[string]bool{}
	for start := 0; start < len(obs); start += reportChunk {
		part := obs[start:min(start+reportChunk, len(obs))]
		refs := make([]string, len(part))
		for i, o := range part {
			refs[i] = "Observation/" + o.ID
		}
		q, err := fhir.ParseQuery("DiagnosticReport", url.Values{"result": {strings.Join(refs, ",")}}, false)
		if err != nil {
			return nil, err
		}
		q.Count, q.Compartment = fhir.MaxCount, req.Principal.Patient
		for {
			page, err := g.Source.Search(ctx, q)
			if err != nil {
				return nil, err
			}
			for _, r := range page.Matches {
				t, err := g.target(r)
				if err != nil {
					return nil, err
				}
				d := access.Decide(ctx, req.Principal, access.Read, t)
				if !d.Permit {
					continue
				}
				held := d.Obligation.Holds(now)
				tree, _ := r.Tree()
				for _, v := range fhir.Values(tree, "result") {
					m, _ := v.(map[string]any)
					ref, _ := m["reference"].(string)
					if typ, id, ok := fhir.ParseRef(ref); ok && typ == "Observation" {
						key := typ + "/" + id
						out[key] = out[key] || held
					}
				}
			}
			if page.Next == "" {
				break
			}
			q.Cursor = page.Next
		}
	}
	return out, nil
}
