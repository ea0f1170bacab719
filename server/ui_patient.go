package server

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// The patient page answers "who accessed this record?": the patient's
// events, and the read records in trail/access that name the patient
// (reads with purpose=system are left out, as in every patient's view),
// also as CSV (an accounting of disclosures) and as a printable page.

// accessRow is one read of a patient's record.
type accessRow struct {
	Date, Who, Role, Purpose, What, Outcome string
	Emergency                               bool
	Refused                                 bool
}

// accessDetails is the part of a read record's details a row shows.
type accessDetails struct {
	Endpoint string            `json:"endpoint"`
	Params   map[string]string `json:"params"`
	Count    int               `json:"count"`
	Reason   string            `json:"reason"`
	Index    *uint64           `json:"index"`
	Stream   string            `json:"stream"`
}

// accessOf turns a read record into a row; ok is false for reads kept out
// of patients' views.
func accessOf(e eventRow) (accessRow, bool) {
	if e.Purpose == purposeSystem || e.Type != "audit-log.read" {
		return accessRow{}, false
	}
	var d accessDetails
	json.Unmarshal(e.Details, &d)
	a := accessRow{Date: e.Time, Who: e.Actor.ID, Role: e.Actor.Role, Purpose: e.Purpose, What: describeRead(d),
		Outcome: "allowed", Emergency: e.Purpose == purposeEmergency}
	if e.Failed() {
		a.Outcome, a.Refused = "refused", true
	}
	if a.Emergency && d.Reason != "" {
		a.What += "; emergency reason: " + d.Reason
	}
	return a, true
}

// describeRead says in words what a read asked for.
func describeRead(d accessDetails) string {
	index := "?"
	if d.Index != nil {
		index = strconv.FormatUint(*d.Index, 10)
	}
	switch d.Endpoint {
	case "GET /v1/events":
		return fmt.Sprintf("searched events%s: %d returned", paramList(d.Params), d.Count)
	case "GET /v1/events/{index}":
		return "opened event " + index
	case "GET /v1/events/{index}/proof":
		return "checked the proof of event " + index
	case "GET /v1/tail":
		return fmt.Sprintf("followed live events%s: %d delivered", paramList(d.Params), d.Count)
	case routeStreamHead:
		return "looked up the length of stream " + d.Stream
	}
	return fmt.Sprintf("%s%s: %d returned", d.Endpoint, paramList(d.Params), d.Count)
}

// paramList writes the filters of a read, in order, leaving out paging.
func paramList(ps map[string]string) string {
	var keys []string
	for k := range ps {
		switch k {
		case "limit", "order", "after", "purpose", "reason":
		default:
			keys = append(keys, k)
		}
	}
	if len(keys) == 0 {
		return ""
	}
	slices.Sort(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + ps[k]
	}
	return " (" + strings.Join(parts, ", ") + ")"
}

// patientData is the patient page's own data.
type patientData struct {
	Mine           bool // a patient's own principal reading its record (/ui/me)
	Patient        string
	Rows           []eventRow
	NextURL        string
	Denied         string
	Problem        string
	Access         []accessRow
	AccessDenied   string
	AccessProblem  string
	AccessMore     bool
	CSVURL         string
	EmergencyCount int
	Live           string // the timeline's live view query (ui_live.go)
}

// maxAccessPages bounds the pages of read records the CSV gathers (1,000
// records a page).
const maxAccessPages = 100

// patient shows a patient's timeline and who accessed the record.
func (c *console) patient(w http.ResponseWriter, r *http.Request, s *session, p *Principal) {
	d := &patientData{Patient: strings.TrimSpace(r.URL.Query().Get("patient"))}
	title := "Patient"
	if d.Patient != "" {
		title = "Patient " + d.Patient
	}
	c.showPatient(w, r, s, p, d, title, "patient")
}

// myRecord is a patient's own page: its record and who has seen it, read
// with its own principal's grants (its streams, and the read records
// naming it).
func (c *console) myRecord(w http.ResponseWriter, r *http.Request, s *session, p *Principal) {
	if p.Patient == "" {
		c.render(w, r, http.StatusForbidden, "error", &pageData{Title: "Not a patient's principal", Session: s,
			Error: fmt.Sprintf("This page shows a patient their own record. Principal %q is not a patient's own principal "+
				"(trail token create --patient <id>); open a patient from the Patient page instead.", p.Name)})
		return
	}
	c.showPatient(w, r, s, p, &patientData{Patient: p.Patient, Mine: true}, "My record", "me")
}

func (c *console) showPatient(w http.ResponseWriter, r *http.Request, s *session, p *Principal, d *patientData, title, nav string) {
	status := http.StatusOK
	if d.Patient != "" {
		d.CSVURL = "/ui/patient/access.csv?" + url.Values{"patient": {d.Patient}}.Encode()
		if r.URL.Query().Get("after") == "" {
			follow := url.Values{"patient": {d.Patient}}
			if d.Mine {
				follow = url.Values{} // its streams, as its timeline
			}
			d.Live = liveQuery(follow, c.s.l.Size())
		}
		status = c.timeline(r, p, d)
		rows, more, pr := c.accessList(r, p, d.Patient, 1)
		if pr != nil {
			c.problemState(pr, &d.AccessDenied, &d.AccessProblem)
			status = max(status, pr.Status)
		}
		d.Access, d.AccessMore = rows, more
		for i, a := range rows {
			if d.Mine && a.Who == p.Name {
				d.Access[i].Who = "You"
			}
			if a.Emergency {
				d.EmergencyCount++
			}
		}
	}
	c.render(w, r, status, "patient", &pageData{Title: title, Nav: nav, Session: s, Page: d})
}

// timeline reads one page of the patient's events: those of Trail's own
// streams (the read records naming the patient) are the list of accesses,
// not the timeline, and are left out of the query.
func (c *console) timeline(r *http.Request, p *Principal, d *patientData) int {
	q := url.Values{"patient": {d.Patient}, "order": {"desc"}, "limit": {strconv.Itoa(pageSize)}}
	if a := r.URL.Query().Get("after"); a != "" {
		q.Set("after", a)
	}
	if d.Mine {
		// Its events are in its streams; events of other streams naming
		// it are not its principal's to read.
		q.Del("patient")
	}
	rows, after, status := c.readEvents(r.WithContext(context.WithValue(r.Context(), unreservedKey{}, true)), p, q, &d.Denied, &d.Problem)
	if status != http.StatusOK {
		return status
	}
	d.Rows = rows
	if after != "" {
		if d.Mine {
			d.NextURL = "/ui/me?" + url.Values{"after": {after}}.Encode()
		} else {
			d.NextURL = "/ui/patient?" + url.Values{"patient": {d.Patient}, "after": {after}}.Encode()
		}
	}
	return http.StatusOK
}

// accessList reads up to pages pages of the read records naming patient,
// newest first; more reports that there were more.
func (c *console) accessList(r *http.Request, p *Principal, patient string, pages int) (rows []accessRow, more bool, pr *problem) {
	q := url.Values{"stream": {AccessStream}, "patient": {patient}, "order": {"desc"}, "limit": {strconv.Itoa(maxLimit)}}
	for range pages {
		body, pr := c.apiGet(r, p, c.s.query, "/v1/events", q, nil)
		if pr != nil {
			return rows, false, pr
		}
		var rep queryReply
		if err := json.Unmarshal(body, &rep); err != nil {
			return rows, false, c.s.internal("console: read records", err)
		}
		evs, err := parseRows(rep.Events)
		if err != nil {
			return rows, false, c.s.internal("console: read records", err)
		}
		for _, e := range evs {
			if a, ok := accessOf(e); ok {
				rows = append(rows, a)
			}
		}
		if rep.Next == "" {
			return rows, false, nil
		}
		q.Set("after", rep.Next)
	}
	return rows, true, nil
}
