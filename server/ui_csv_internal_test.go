package server

import "testing"

// TestAccessCSV: the accounting of disclosures is RFC 4180 (CRLF line
// ends, also inside quoted fields; fields with commas, quotes or line
// breaks quoted, quotes doubled)
// under the fixed header, and a cell starting with = + - or @ gets a
// leading ' so that no spreadsheet runs it as a formula.
func TestAccessCSV(t *testing.T) {
	rows := []accessRow{
		{Date: "2026-12-07T10:00:00.000000001Z", Who: "=HYPERLINK(\"http://x\")", Role: "+nurse", Purpose: "-2",
			What: "@SUM(A1)", Outcome: "allowed"},
		{Date: "2026-12-07T10:00:01Z", Who: "dr, house", Role: "", Purpose: "treatment",
			What: "line\nbreak and \"quote\"", Outcome: "refused"},
		{Date: "d", Who: " =not first", Role: "a=b", Purpose: "", What: "", Outcome: "allowed"},
	}
	want := "date,who,role,purpose,what,outcome\r\n" +
		"2026-12-07T10:00:00.000000001Z,\"'=HYPERLINK(\"\"http://x\"\")\",'+nurse,'-2,'@SUM(A1),allowed\r\n" +
		"2026-12-07T10:00:01Z,\"dr, house\",,treatment,\"line\r\nbreak and \"\"quote\"\"\",refused\r\n" +
		"d,\" =not first\",a=b,,,allowed\r\n"
	if got := string(accessCSVBytes(rows)); got != want {
		t.Errorf("CSV:\n%q\nwant\n%q", got, want)
	}
	if got := string(accessCSVBytes(nil)); got != "date,who,role,purpose,what,outcome\r\n" {
		t.Errorf("empty CSV %q", got)
	}
}

// TestCSVFileName: the export's name keeps only safe characters.
func TestCSVFileName(t *testing.T) {
	for in, want := range map[string]string{
		"123":                "accesses-123.csv",
		`12"; rm -rf\n/é`:    "accesses-12___rm_-rf_n__.csv",
		"1.2.3:4^^^&1.2&ISO": "accesses-1.2.3_4____1.2_ISO.csv",
	} {
		if got := csvFileName(in); got != want {
			t.Errorf("csvFileName(%q) = %q, want %q", in, got, want)
		}
	}
}
