package views

import "strings"

// readableUnits spells UCUM units the way people read them.
var readableUnits = map[string]string{
	"mm[Hg]": "mmHg", "mL/min/{1.73_m2}": "mL/min/1.73 m²", "mL/min/1.73m2": "mL/min/1.73 m²",
	"kg/m2": "kg/m²", "10*3/uL": "thousand per µL", "10*6/uL": "million per µL", "10*9/L": "billion per L",
	"10*12/L": "trillion per L", "/min": "per minute", "{beats}/min": "beats per minute", "{breaths}/min": "breaths per minute",
	"Cel": "°C", "[degF]": "°F", "[lb_av]": "lb", "[in_i]": "in", "{score}": "points", "%": "%",
	"uL": "µL", "ug/dL": "µg/dL", "ug/L": "µg/L", "umol/L": "µmol/L", "u[IU]/mL": "µIU/mL", "m[IU]/L": "mIU/L",
	"[IU]/L": "IU/L", "U/L": "U/L", "{ratio}": "", "1": "", "{INR}": "",
}

// unit renders a Quantity's unit: its code (UCUM) made readable, else the
// unit text the record gives.
func unit(q map[string]any) string {
	code, text := str(q, "code"), str(q, "unit")
	if r, ok := readableUnits[code]; ok && (str(q, "system") == "http://unitsofmeasure.org" || code == text) {
		return r
	}
	if r, ok := readableUnits[text]; ok {
		return r
	}
	if text != "" {
		return text
	}
	return strings.Trim(code, "{}")
}
