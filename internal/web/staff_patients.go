package web

import (
	"context"
	"time"

	"carefront/internal/apperr"
	"carefront/internal/clinical"
	"carefront/internal/views"
)

// staffPatient is how a staff page names a patient: the name and birth
// date that tell one patient from another, and the record's id.
type staffPatient struct {
	ID    string
	Name  string
	Birth time.Time
}

// staffPatients reads the Patient resource of each patient a staff page
// lists, through the gateway (decided and audited for the staff member;
// pool, when not "", is the messaging pool through which they reach the
// patient, which lets a pool member read that much and no more). A
// patient whose name they may not read, or whose record has none, is
// named by id.
func (s *Server) staffPatients(ctx context.Context, req clinical.Request, ids, pools []string) (map[string]staffPatient, error) {
	out := map[string]staffPatient{}
	for i, id := range ids {
		if _, ok := out[id]; ok {
			continue
		}
		sp := staffPatient{ID: id}
		pr := req
		pr.Principal.Patient, pr.Pool = id, ""
		if pools != nil {
			pr.Pool = pools[i]
		}
		rec, err := s.opts.Clinical.Read(ctx, pr, "Patient", id)
		switch apperr.CodeOf(err) {
		case "":
			sp.Name, sp.Birth = views.PatientFacts(rec)
		case apperr.NotFound, apperr.Gone:
		default:
			return nil, err
		}
		out[id] = sp
	}
	return out, nil
}
