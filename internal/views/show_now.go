package views

import (
	"context"
	"errors"

	"carefront/internal/apperr"
	"carefront/internal/clinical"
	"carefront/internal/fhir"
)

// maxShowNow bounds the results one "Show it now" names (a report and its
// parts).
const maxShowNow = 100

// CheckHeld confirms that every one of refs ("DiagnosticReport/1") is a
// result of the person's that is held for review now: "Show it now" may
// release only those. Anything else (a result already shown, someone
// else's, one that does not exist, a malformed reference) is Invalid, and
// nothing is released.
func (b *Builder) CheckHeld(ctx context.Context, req clinical.Request, refs []string) error {
	if len(refs) == 0 || len(refs) > maxShowNow {
		return apperr.New(apperr.Invalid, "Choose a result to show.")
	}
	s, err := b.open(ctx, req, "show-now", "")
	if err != nil {
		return err
	}
	err = func() error {
		for _, ref := range refs {
			typ, id, ok := fhir.ParseRef(ref)
			if !ok || (typ != "Observation" && typ != "DiagnosticReport" && typ != "DocumentReference") || ref != typ+"/"+id {
				return apperr.New(apperr.Invalid, "ref must name a result, like Observation/123")
			}
			_, err := s.v.Read(ctx, typ, id)
			var held *clinical.HeldError
			switch {
			case errors.As(err, &held):
				continue
			case err == nil || apperr.CodeOf(err) == apperr.NotFound:
				return apperr.New(apperr.Invalid, "That result is not waiting for review.")
			default:
				return err
			}
		}
		return nil
	}()
	return s.finish(ctx, err)
}
