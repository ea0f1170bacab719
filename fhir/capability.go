package fhir

// CapabilityStatement returns the R4 CapabilityStatement of Trail's FHIR
// API, as compact JSON.
func CapabilityStatement(software, date string) ([]byte, error) {
	type searchParam struct {
		Name          string `json:"name"`
		Type          string `json:"type"`
		Documentation string `json:"documentation,omitempty"`
	}
	type interaction struct {
		Code string `json:"code"`
	}
	type resource struct {
		Type         string        `json:"type"`
		Profile      string        `json:"profile,omitempty"`
		Interaction  []interaction `json:"interaction"`
		Versioning   string        `json:"versioning"`
		ReadHistory  bool          `json:"readHistory"`
		UpdateCreate bool          `json:"updateCreate"`
		SearchParam  []searchParam `json:"searchParam"`
	}
	type rest struct {
		Mode        string        `json:"mode"`
		Resource    []resource    `json:"resource"`
		Interaction []interaction `json:"interaction"`
	}
	res := resource{
		Type:         "AuditEvent",
		Profile:      "http://hl7.org/fhir/StructureDefinition/AuditEvent",
		Interaction:  []interaction{{"read"}, {"vread"}, {"create"}, {"update"}, {"search-type"}},
		Versioning:   "versioned",
		UpdateCreate: true,
	}
	for _, p := range SearchParams {
		res.SearchParam = append(res.SearchParam, searchParam{p.Name, p.Type, p.Doc})
	}
	cs := struct {
		ResourceType string `json:"resourceType"`
		Status       string `json:"status"`
		Date         string `json:"date"`
		Kind         string `json:"kind"`
		Software     struct {
			Name string `json:"name"`
		} `json:"software"`
		Implementation struct {
			Description string `json:"description"`
		} `json:"implementation"`
		FHIRVersion string   `json:"fhirVersion"`
		Format      []string `json:"format"`
		Rest        []rest   `json:"rest"`
	}{
		ResourceType: "CapabilityStatement", Status: "active", Date: date, Kind: "instance",
		FHIRVersion: "4.0.1", Format: []string{"application/fhir+json", "json"},
		Rest: []rest{{Mode: "server", Resource: []resource{res}, Interaction: []interaction{{"batch"}, {"transaction"}}}},
	}
	cs.Software.Name = software
	cs.Implementation.Description = software + ": an append-only, tamper-evident audit trail (IHE ATNA and FHIR AuditEvent)"
	return marshal(cs)
}
