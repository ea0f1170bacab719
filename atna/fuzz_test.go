package atna_test

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/trailhq/trail/atna"
)

// FuzzDecode: Decode never panics and reads at most 64 KiB and one byte;
// whatever Map makes of a decoded message validates as a trail.Event on a
// stream that is not reserved, within the size limit.
func FuzzDecode(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.xml")
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add(message(`EventActionCode="R" EventOutcomeIndicator="0"`, requestor))
	f.Add([]byte(`<!DOCTYPE a [<!ENTITY b "c">]><AuditMessage>&b;</AuditMessage>`))
	f.Fuzz(func(t *testing.T, data []byte) {
		// Past 64 KiB the reader goes on without end: Decode must stop.
		c := &countingReader{r: bytes.NewReader(data), endless: len(data) > atna.MaxMessageSize}
		msg, err := atna.Decode(c)
		if c.n > atna.MaxMessageSize+1 {
			t.Fatalf("read %d bytes", c.n)
		}
		if err != nil {
			return
		}
		m, err := atna.Map(msg)
		if err != nil {
			return
		}
		checkEvent(t, m)
	})
}
