package fhir

import (
	"bytes"
	"encoding/json"
	"reflect"
)

// ResourceID is the id a resource (JSON) carries, "" when none or when it
// is not a JSON object with a string id.
func ResourceID(data []byte) string {
	var r struct {
		ID string `json:"id"`
	}
	if json.Unmarshal(data, &r) != nil {
		return ""
	}
	return r.ID
}

// SameResource reports whether two resources are equal as JSON values,
// their id and meta apart: the test of a PUT with an id already stored
// (200 when the same, 409 when not).
func SameResource(a, b []byte) bool {
	va, ok := jsonValue(a)
	if !ok {
		return false
	}
	vb, ok := jsonValue(b)
	return ok && reflect.DeepEqual(va, vb)
}

func jsonValue(data []byte) (map[string]any, bool) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var m map[string]any
	if dec.Decode(&m) != nil || m == nil {
		return nil, false
	}
	delete(m, "id")
	delete(m, "meta")
	return m, true
}
