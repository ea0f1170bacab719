package atna

import (
	"bytes"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// fastXMLSeeds are odd messages around the fast path's edges: namespaces,
// references, CDATA, comments, duplicates, white space, characters.
var fastXMLSeeds = []string{
	`<AuditMessage/>`,
	`<AuditMessage></AuditMessage >`,
	`<?xml version="1.0"?><AuditMessage/>`,
	`<?xml version='1.0' encoding='utf-8' standalone='no' ?>` + "\r\n<AuditMessage/>\n",
	`<?xml version="1.1"?><AuditMessage/>`,
	`<?xml encoding="UTF-8" version="1.0"?><AuditMessage/>`,
	`<?xml version="1.0" encoding="latin1"?><AuditMessage/>`,
	`<?xml-stylesheet href="a"?><AuditMessage/>`,
	`<!-- a -- b --><AuditMessage/>`,
	`<!-- a --><AuditMessage><!----></AuditMessage><!-- b -->`,
	`<!--->--><AuditMessage/>`,
	`<AuditMessage/>x`,
	`x<AuditMessage/>`,
	`<AuditMessage/><AuditMessage/>`,
	`<AuditEvent/>`,
	`<a:AuditMessage/>`,
	`<AuditMessage><![CDATA[x]]></AuditMessage>`,
	`<AuditMessage><!DOCTYPE x></AuditMessage>`,
	`<AuditMessage><?pi x?></AuditMessage>`,
	`<AuditMessage>]]></AuditMessage>`,
	`<AuditMessage>]]&gt;&#93;]></AuditMessage>`,
	`<AuditMessage><EventIdentification EventActionCode="]]>"/></AuditMessage>`,
	`<AuditMessage><EventIdentification EventActionCode="a<b"/></AuditMessage>`,
	`<AuditMessage><EventIdentification EventActionCode="R"EventOutcomeIndicator='0' /></AuditMessage>`,
	`<AuditMessage><EventIdentification EventActionCode = "R" EventActionCode="C"/></AuditMessage>`,
	`<AuditMessage><EventIdentification EventActionCode="R" a:EventActionCode="C"/></AuditMessage>`,
	`<AuditMessage xmlns:a="urn:a"><EventIdentification a:EventActionCode="C"/></AuditMessage>`,
	`<AuditMessage><EventIdentification EventActionCode=R/></AuditMessage>`,
	`<AuditMessage><EventIdentification EventActionCode/></AuditMessage>`,
	`<AuditMessage><EventIdentification EventActionCode="R"></EventIdentificatio></AuditMessage>`,
	`<AuditMessage><EventIdentification EventActionCode="R"></AuditMessage>`,
	`<AuditMessage><EventIdentification EventActionCode="R"/>`,
	`<AuditMessage><EventIdentification EventDateTime="a&#13;&#10;b` + "\r\nc\rd\r\r\ne\t" + `"/></AuditMessage>`,
	`<AuditMessage><EventIdentification EventDateTime="&lt;&gt;&amp;&apos;&quot;&#65;&#x41;&#X41;"/></AuditMessage>`,
	`<AuditMessage><EventIdentification EventDateTime="&#0;"/></AuditMessage>`,
	`<AuditMessage><EventIdentification EventDateTime="&#xD800;"/></AuditMessage>`,
	`<AuditMessage><EventIdentification EventDateTime="&#xFFFE;&#x10FFFF;"/></AuditMessage>`,
	`<AuditMessage><EventIdentification EventDateTime="&#x110000;"/></AuditMessage>`,
	`<AuditMessage><EventIdentification EventDateTime="&#0000065;&#00000065;"/></AuditMessage>`,
	`<AuditMessage><EventIdentification EventDateTime="&#65"/></AuditMessage>`,
	`<AuditMessage><EventIdentification EventDateTime="&nbsp;"/></AuditMessage>`,
	`<AuditMessage><EventIdentification EventDateTime="&lt"/></AuditMessage>`,
	"<AuditMessage><EventIdentification EventDateTime=\"\x01\"/></AuditMessage>",
	"<AuditMessage><EventIdentification EventDateTime=\"\xef\xbf\xbe\xef\xbf\xbd\"/></AuditMessage>",
	"<AuditMessage><EventIdentification EventDateTime=\"\xff\"/></AuditMessage>",
	"<AuditMessage><EventIdentification EventDateTime=\"\xed\xa0\x80\"/></AuditMessage>",
	"<AuditMessage>\x7f\u0085\u2028</AuditMessage>",
	"<AuditMessage>\x00</AuditMessage>",
	"<AuditMessage><EventIdentificationé/></AuditMessage>",
	"<AuditMessage><é/></AuditMessage>",
	`<AuditMessage><EventIdentification><EventID csd-code=" 1 " code="2" codeSystemName=" " codeSystem="S"><x>y</x></EventID><EventID code="3"/></EventIdentification></AuditMessage>`,
	`<AuditMessage><EventIdentification EventActionCode="R"/><EventIdentification EventOutcomeIndicator="0"><EventTypeCode code="a"/></EventIdentification><EventIdentification><EventTypeCode code="b"/></EventIdentification></AuditMessage>`,
	`<AuditMessage><EventIdentification><EventOutcomeDescription>a<!--c-->b<x>no</x>c&amp;` + "\r" + `<!---->` + "\nd" + `</EventOutcomeDescription><EventOutcomeDescription/></EventIdentification></AuditMessage>`,
	`<AuditMessage><EventIdentification><EventOutcomeDescription>a<![CDATA[b]]>c</EventOutcomeDescription></EventIdentification></AuditMessage>`,
	`<AuditMessage><ActiveParticipant UserID="u"><MediaIdentifier><MediaType code="a"/><Other/></MediaIdentifier><MediaIdentifier/></ActiveParticipant></AuditMessage>`,
	`<AuditMessage><ActiveParticipant UserID="u"><MediaIdentifier><MediaType code="a"/></MediaIdentifier><MediaIdentifier><MediaType code="b"/></MediaIdentifier></ActiveParticipant></AuditMessage>`,
	`<AuditMessage><ParticipantObjectIdentification ParticipantObjectID="1"><ParticipantObjectName>a</ParticipantObjectName><ParticipantObjectName>b</ParticipantObjectName><ParticipantObjectDetail type="t" value="v"><x/>text</ParticipantObjectDetail><ParticipantObjectQuery>q</ParticipantObjectQuery></ParticipantObjectIdentification></AuditMessage>`,
	`<AuditMessage>text<Foo a="b"><Bar/>x</Foo><foo.bar-baz_1/><EventID/></AuditMessage>`,
	`<AuditMessage xmlns="urn:x"><Foo/><Foo xmlns="urn:y"/><p:Foo xmlns:p="urn:p"/><Foo xmlns="urn:z"><Bar/></Foo></AuditMessage>`,
	`<AuditMessage xmlns=""><Foo/></AuditMessage>`,
	`<AuditMessage xmlns:p=""><p:Foo/></AuditMessage>`,
	`<AuditMessage xmlns="urn:d" xmlns:p="urn:d"><p:Foo/></AuditMessage>`,
	`<AuditMessage xmlns:p="q" xmlns:q="urn:q"><p:Foo/></AuditMessage>`,
	`<AuditMessage xmlns:p="urn:a"><p:Foo xmlns:p="urn:b"/><p:Foo/></AuditMessage>`,
	`<AuditMessage><p:Foo/></AuditMessage>`,
	`<AuditMessage><xml:Foo/><xmlns:Foo/><xmlns/><Foo xml:lang="en"/></AuditMessage>`,
	`<AuditMessage xmlns:xml="urn:x"><Foo/></AuditMessage>`,
	`<AuditMessage><:Foo/><Foo:/><a:b:c/></AuditMessage>`,
	`<AuditMessage><ActiveParticipant xmlns:UserID="urn:u"/></AuditMessage>`,
	`<AuditMessage><ActiveParticipant UserID="a" xmlns:UserID="urn:u"/></AuditMessage>`,
	`<AuditMessage xmlns:a="urn:a"><a:ActiveParticipant a:UserID="u"><a:RoleIDCode a:code="r"/></a:ActiveParticipant></AuditMessage>`,
	`<AuditMessage xmlns="urn:a&amp;b:c"><Foo/></AuditMessage>`,
	`<AuditMessage><EventIdentification>` + strings.Repeat("<a>", 70) + strings.Repeat("</a>", 70) + `</EventIdentification></AuditMessage>`,
	`<AuditMessage><a x="1" x="2"/></AuditMessage>`,
	`<AuditMessage><a/ ></AuditMessage>`,
	`<AuditMessage><a></a ></AuditMessage>`,
	`<AuditMessage><a></ a></AuditMessage>`,
	`<AuditMessage><AuditSourceIdentification AuditSourceID="s" AuditEnterpriseSiteID="e"><AuditSourceTypeCode code="4"/><Extra/></AuditSourceIdentification></AuditMessage>`,
}

// FuzzParseFastXML: whatever parseFast accepts, encoding/xml decodes to
// the very same message, so the fast path changes speed only.
func FuzzParseFastXML(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.xml")
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
		s := string(data)
		// The samples, each changed in a way the fast path must decode
		// exactly or leave to encoding/xml.
		for _, r := range [][2]string{
			{"<AuditMessage", `<a:AuditMessage xmlns:a="urn:a"`},
			{"</AuditMessage>", "<Extra>text</Extra></AuditMessage>"},
			{"<AuditMessage>", `<AuditMessage xmlns="urn:ihe:iti:svs:2008">`},
			{"UserID=", "x:UserID="},
			{`"/>`, `">&#x1F600;&amp;<!--c--></x>`},
			{"^", "&#94;"},
			{"&amp;", "&#38;"},
			{"&amp;", "<![CDATA[&]]>"},
			{"Doe", "Doe<!-- c -->"},
			{"Doe", "<![CDATA[Doe]]>"},
			{"\n", "\r\n"},
			{`"`, `'`},
			{"DCM", "D&#67;M"},
			{"<?xml", "<!DOCTYPE a><?xml"},
			{"/>", "></x>"},
		} {
			f.Add([]byte(strings.Replace(s, r[0], r[1], 1)))
		}
	}
	for _, s := range fastXMLSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		checkFastXML(t, data)
		checkFastXML(t, bytes.TrimPrefix(data, bom))
	})
}

// checkFastXML fails when parseFast accepts data and encoding/xml does not
// decode it to the same message.
func checkFastXML(t *testing.T, data []byte) {
	t.Helper()
	fast, ok := parseFast(data)
	if !ok {
		return
	}
	slow, err := parseXML(data)
	if err != nil {
		t.Fatalf("parseFast accepted %q, encoding/xml refuses it: %v", data, err)
	}
	if !reflect.DeepEqual(fast, slow) {
		t.Fatalf("parseFast and encoding/xml differ for %q:\nfast %#v\nslow %#v", data, fast, slow)
	}
}

// TestParseFastTakesSamples: every sample takes the fast path, so it cannot
// silently stop being used; and Parse returns what encoding/xml makes of it.
func TestParseFastTakesSamples(t *testing.T) {
	files, err := filepath.Glob("testdata/*.xml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no samples: %v", err)
	}
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		data = bytes.TrimPrefix(data, bom)
		if _, ok := parseFast(data); !ok {
			t.Errorf("%s does not take the fast path", file)
			continue
		}
		checkFastXML(t, data)
	}
}

// TestParseFastEdges: odd messages the fast path decodes itself, and some
// it must leave to encoding/xml.
func TestParseFastEdges(t *testing.T) {
	takes := []string{
		`<AuditMessage/>`,
		`<?xml version='1.0' encoding='utf-8' standalone='no' ?>` + "\r\n<AuditMessage/>\n",
		`<!-- a --><AuditMessage><!----></AuditMessage><!-- b -->`,
		`<AuditMessage><EventIdentification EventActionCode="R"EventOutcomeIndicator='0' /></AuditMessage>`,
		`<AuditMessage><EventIdentification EventDateTime="a&#13;&#10;b` + "\r\nc\rd\r\r\ne\t" + `"/></AuditMessage>`,
		`<AuditMessage><EventIdentification><EventOutcomeDescription>a<!--c-->b<x>no</x>c&amp;` + "\r" + `<!---->` + "\nd" + `</EventOutcomeDescription></EventIdentification></AuditMessage>`,
		`<AuditMessage xmlns="urn:x"><Foo/><Foo xmlns="urn:y"/><p:Foo xmlns:p="urn:p"/></AuditMessage>`,
		`<AuditMessage xmlns:a="urn:a"><a:ActiveParticipant a:UserID="u"><a:RoleIDCode a:code="r"/></a:ActiveParticipant></AuditMessage>`,
		`<AuditMessage><EventIdentification>` + strings.Repeat("<a>", 60) + strings.Repeat("</a>", 60) + `</EventIdentification></AuditMessage>`,
	}
	for _, s := range takes {
		if _, ok := parseFast([]byte(s)); !ok {
			t.Errorf("parseFast(%q) falls back", s)
		}
		checkFastXML(t, []byte(s))
	}
	leaves := []string{
		`<AuditMessage><![CDATA[x]]></AuditMessage>`,
		`<AuditMessage><!DOCTYPE x></AuditMessage>`,
		`<AuditMessage><?pi x?></AuditMessage>`,
		`<AuditMessage>]]></AuditMessage>`,
		`<AuditMessage><EventIdentification EventDateTime="&#xD800;"/></AuditMessage>`,
		`<AuditMessage><EventIdentification EventDateTime="&nbsp;"/></AuditMessage>`,
		`<AuditMessage><EventIdentification EventActionCode="R" a:EventActionCode="C"/></AuditMessage>`,
		`<AuditMessage xmlns=""><Foo/></AuditMessage>`,
		`<AuditMessage><p:Foo/></AuditMessage>`,
		`<AuditMessage/>x`,
		"<AuditMessage><EventIdentification EventDateTime=\"\xff\"/></AuditMessage>",
	}
	for _, s := range leaves {
		if _, ok := parseFast([]byte(s)); ok {
			t.Errorf("parseFast(%q) takes it", s)
		}
	}
}

// BenchmarkParse parses every sample, by Parse (the fast path) and by
// encoding/xml alone.
func BenchmarkParse(b *testing.B) {
	files, _ := filepath.Glob("testdata/*.xml")
	var samples [][]byte
	size := 0
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			b.Fatal(err)
		}
		samples = append(samples, data)
		size += len(data)
	}
	slow := func(data []byte) (*AuditMessage, error) {
		return parseXML(bytes.TrimPrefix(data, bom))
	}
	for _, bm := range []struct {
		name  string
		parse func([]byte) (*AuditMessage, error)
	}{{"fast", Parse}, {"slow", slow}} {
		b.Run(bm.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(size / len(samples)))
			for i := 0; b.Loop(); i++ {
				if _, err := bm.parse(samples[i%len(samples)]); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestParseFastRandom builds messages from pieces the fast path treats
// with care (namespaces, references, comments, CDATA, duplicates, the
// known elements in odd places) and checks each the fast path accepts
// against encoding/xml: structure the fuzzer is slow to find.
func TestParseFastRandom(t *testing.T) {
	n := 5000
	if testing.Short() {
		n = 500
	}
	rng := rand.New(rand.NewPCG(1, 2))
	pick := func(s ...string) string { return s[rng.IntN(len(s))] }
	names := []string{
		"AuditMessage", "EventIdentification", "EventID", "EventTypeCode", "EventOutcomeDescription",
		"PurposeOfUse", "ActiveParticipant", "RoleIDCode", "MediaIdentifier", "MediaType",
		"AuditSourceIdentification", "AuditSourceTypeCode", "ParticipantObjectIdentification",
		"ParticipantObjectIDTypeCode", "ParticipantObjectName", "ParticipantObjectQuery",
		"ParticipantObjectDetail", "Unknown", "Foo", "xmlns", "SOPClass",
	}
	attrs := []string{
		"EventActionCode", "EventDateTime", "EventOutcomeIndicator", "UserID", "UserName",
		"UserIsRequestor", "AuditSourceID", "ParticipantObjectID", "type", "value", "csd-code",
		"code", "codeSystemName", "codeSystem", "displayName", "originalText", "other",
	}
	prefixes := []string{"", "", "", "a:", "b:", "xml:", "xmlns:", "c:"}
	value := func() string {
		return pick("", "x", " 1 ", "a&amp;b", "&#65;&#x42;", "&lt;&gt;&quot;&apos;", "\r\n\t", "&#13;", "é", "]]>", "urn:a", "urn:b", "a&#0;", "&#xD800;", "&bad;", "a\rb", "&#x1F600;")
	}
	text := func() string {
		return pick("", " ", "\n  ", "x", "a&amp;b", "<!--c-->", "<![CDATA[c]]>", "\r\n", "&#65;", "]]>", "<?p?>", "é", "\x01")
	}
	var elem func(depth int) string
	elem = func(depth int) string {
		name := pick(prefixes...) + pick(names...)
		var b strings.Builder
		b.WriteString("<" + name)
		for range rng.IntN(4) {
			a := pick(prefixes...) + pick(attrs...)
			switch rng.IntN(8) {
			case 0:
				a = pick("xmlns", "xmlns:a", "xmlns:b", "xmlns:xml")
			}
			q := pick(`"`, `'`)
			v := value()
			if strings.Contains(v, q) {
				continue
			}
			b.WriteString(pick(" ", "\n", "") + a + pick("=", " = ") + q + v + q)
		}
		if depth > 4 || rng.IntN(3) == 0 {
			b.WriteString(pick("/>", " />"))
			return b.String()
		}
		b.WriteString(">")
		for range rng.IntN(5) {
			b.WriteString(text())
			b.WriteString(elem(depth + 1))
		}
		b.WriteString(text())
		b.WriteString("</" + name + pick(">", " >"))
		return b.String()
	}
	taken := 0
	for range n {
		root := "<" + pick("", "", "a:") + "AuditMessage" + pick("", ` xmlns="urn:d"`, ` xmlns:a="urn:a"`, ` xmlns:a="urn:a" xmlns:b="urn:b"`, ` xmlns:b="b"`) + ">"
		var b strings.Builder
		b.WriteString(pick("", `<?xml version="1.0" encoding="UTF-8"?>`+"\n", "<!-- x -->"))
		b.WriteString(root)
		for range rng.IntN(6) {
			b.WriteString(text())
			b.WriteString(elem(0))
		}
		b.WriteString("</" + root[1:strings.IndexAny(root, " >")] + ">")
		data := []byte(b.String())
		if _, ok := parseFast(data); ok {
			taken++
		}
		checkFastXML(t, data)
	}
	t.Logf("fast path took %d of %d", taken, n)
}
