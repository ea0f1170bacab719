package server

import (
	"encoding/csv"
	"net/http"
	"strings"
)

// The accounting of disclosures of one patient, as CSV.

// csvHeader is the fixed header of the accounting of disclosures.
var csvHeader = []string{"date", "who", "role", "purpose", "what", "outcome"}

// accessCSV answers the accounting of disclosures of a patient as CSV
// (RFC 4180: CRLF line ends, quoted where needed). A cell starting with
// = + - or @ gets a leading ' so that a spreadsheet shows it as text
// instead of running it as a formula.
func (c *console) accessCSV(w http.ResponseWriter, r *http.Request, s *session, p *Principal) {
	patient := strings.TrimSpace(r.URL.Query().Get("patient"))
	if patient == "" {
		c.render(w, r, http.StatusBadRequest, "error", &pageData{Title: "No patient", Session: s,
			Error: "Name a patient to export the accesses of: open the patient page first."})
		return
	}
	rows, more, pr := c.accessList(r, p, patient, maxAccessPages)
	if pr != nil {
		c.render(w, r, pr.Status, "error", &pageData{Title: "Export refused", Session: s, Error: pr.Detail})
		return
	}
	if more {
		c.log.Warn("console: accounting of disclosures cut short", "patient_records", len(rows))
	}
	w.Header().Set("Content-Type", "text/csv; charset=utf-8; header=present")
	w.Header().Set("Content-Disposition", `attachment; filename="`+csvFileName(patient)+`"`)
	w.Write(accessCSVBytes(rows))
}

// accessCSVBytes writes rows as RFC 4180 CSV under csvHeader.
func accessCSVBytes(rows []accessRow) []byte {
	var b strings.Builder
	cw := csv.NewWriter(&b)
	cw.UseCRLF = true
	cw.Write(csvHeader)
	for _, a := range rows {
		cw.Write([]string{neutralise(a.Date), neutralise(a.Who), neutralise(a.Role), neutralise(a.Purpose),
			neutralise(a.What), neutralise(a.Outcome)})
	}
	cw.Flush()
	return []byte(b.String())
}

// neutralise keeps a spreadsheet from reading a cell as a formula.
func neutralise(cell string) string {
	if cell != "" && strings.ContainsRune("=+-@", rune(cell[0])) {
		return "'" + cell
	}
	return cell
}

// csvFileName is the export's file name: the patient id with only safe
// characters kept.
func csvFileName(patient string) string {
	safe := strings.Map(func(r rune) rune {
		if r < 128 && (r == '-' || r == '.' || r == '_' || 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9') {
			return r
		}
		return '_'
	}, patient)
	if len(safe) > 64 {
		safe = safe[:64]
	}
	return "accesses-" + safe + ".csv"
}
