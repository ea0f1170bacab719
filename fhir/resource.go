package fhir

import "encoding/json"

// The structs below hold the R4 AuditEvent elements Trail maps, and no
// others: they are used to read a resource (Decode), to build the view of
// an event that did not come as an AuditEvent (View), and to match search
// parameters. An AuditEvent that came as one is never re-encoded from them:
// its view is the resource as sent.

// AuditEvent is the part of an R4 AuditEvent resource Trail maps.
type AuditEvent struct {
	ResourceType   string            `json:"resourceType"`
	ID             string            `json:"id,omitempty"`
	Meta           *Meta             `json:"meta,omitempty"`
	Type           *Coding           `json:"type"`
	Subtype        []Coding          `json:"subtype,omitempty"`
	Action         string            `json:"action,omitempty"`
	Recorded       string            `json:"recorded"`
	Outcome        string            `json:"outcome,omitempty"`
	OutcomeDesc    string            `json:"outcomeDesc,omitempty"`
	PurposeOfEvent []CodeableConcept `json:"purposeOfEvent,omitempty"`
	Agent          []Agent           `json:"agent"`
	Source         *Source           `json:"source"`
	Entity         []Entity          `json:"entity,omitempty"`
}

// Meta is a resource's meta element.
type Meta struct {
	VersionID   string `json:"versionId,omitempty"`
	LastUpdated string `json:"lastUpdated,omitempty"`
}

// Coding is a code in a code system.
type Coding struct {
	System  string `json:"system,omitempty"`
	Code    string `json:"code,omitempty"`
	Display string `json:"display,omitempty"`
}

// CodeableConcept is a concept given by codings and text.
type CodeableConcept struct {
	Coding []Coding `json:"coding,omitempty"`
	Text   string   `json:"text,omitempty"`
}

// Identifier is a business identifier.
type Identifier struct {
	System string `json:"system,omitempty"`
	Value  string `json:"value,omitempty"`
}

// Reference points at another resource, by URL or by identifier.
type Reference struct {
	Reference  string      `json:"reference,omitempty"`
	Identifier *Identifier `json:"identifier,omitempty"`
	Display    string      `json:"display,omitempty"`
}

// Agent is an AuditEvent.agent: an actor in the event.
type Agent struct {
	Type         *CodeableConcept  `json:"type,omitempty"`
	Role         []CodeableConcept `json:"role,omitempty"`
	Who          *Reference        `json:"who,omitempty"`
	AltID        string            `json:"altId,omitempty"`
	Name         string            `json:"name,omitempty"`
	Requestor    *bool             `json:"requestor"`
	Network      *Network          `json:"network,omitempty"`
	PurposeOfUse []CodeableConcept `json:"purposeOfUse,omitempty"`
}

// Network is where an agent acted from.
type Network struct {
	Address string `json:"address,omitempty"`
	Type    string `json:"type,omitempty"`
}

// Source is the AuditEvent.source: the system that reports the event.
type Source struct {
	Site     string     `json:"site,omitempty"`
	Observer *Reference `json:"observer"`
	Type     []Coding   `json:"type,omitempty"`
}

// Entity is an AuditEvent.entity: data or objects used.
type Entity struct {
	What        *Reference `json:"what,omitempty"`
	Type        *Coding    `json:"type,omitempty"`
	Role        *Coding    `json:"role,omitempty"`
	Name        string     `json:"name,omitempty"`
	Description string     `json:"description,omitempty"`
	Detail      []Detail   `json:"detail,omitempty"`
}

// Detail is an entity's additional information, a name and a value.
type Detail struct {
	Type        string `json:"type"`
	ValueString string `json:"valueString,omitempty"`
}

// OperationOutcome is the R4 resource for errors and warnings.
type OperationOutcome struct {
	ResourceType string  `json:"resourceType"`
	Issue        []Issue `json:"issue"`
}

// Issue is one problem of an OperationOutcome. Expression is the
// FHIRPath of the element at fault, such as "AuditEvent.agent[0].requestor".
type Issue struct {
	Severity    string   `json:"severity"`
	Code        string   `json:"code"`
	Diagnostics string   `json:"diagnostics,omitempty"`
	Expression  []string `json:"expression,omitempty"`
}

// NewOutcome returns an OperationOutcome of the issues.
func NewOutcome(issues ...Issue) OperationOutcome {
	return OperationOutcome{ResourceType: "OperationOutcome", Issue: issues}
}

// Bundle is an R4 Bundle: a search result, a batch or transaction and its
// response.
type Bundle struct {
	ResourceType string        `json:"resourceType"`
	Type         string        `json:"type"`
	Total        *int          `json:"total,omitempty"`
	Link         []BundleLink  `json:"link,omitempty"`
	Entry        []BundleEntry `json:"entry,omitempty"`
}

// BundleLink is a link of a Bundle, such as self or next.
type BundleLink struct {
	Relation string `json:"relation"`
	URL      string `json:"url"`
}

// BundleEntry is one entry of a Bundle.
type BundleEntry struct {
	FullURL  string          `json:"fullUrl,omitempty"`
	Resource json.RawMessage `json:"resource,omitempty"`
	Search   *EntrySearch    `json:"search,omitempty"`
	Request  *EntryRequest   `json:"request,omitempty"`
	Response *EntryResponse  `json:"response,omitempty"`
}

// EntrySearch says why an entry is in a searchset.
type EntrySearch struct {
	Mode string `json:"mode"`
}

// EntryRequest is the request of a batch or transaction entry.
type EntryRequest struct {
	Method string `json:"method"`
	URL    string `json:"url"`
}

// EntryResponse is the outcome of one batch or transaction entry.
type EntryResponse struct {
	Status       string          `json:"status"`
	Location     string          `json:"location,omitempty"`
	Etag         string          `json:"etag,omitempty"`
	LastModified string          `json:"lastModified,omitempty"`
	Outcome      json.RawMessage `json:"outcome,omitempty"`
}
