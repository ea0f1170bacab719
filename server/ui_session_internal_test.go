package server

import (
	"testing"
	"time"
)

func TestInWords(t *testing.T) {
	for d, want := range map[time.Duration]string{
		15 * time.Minute: "15 minutes", 8 * time.Hour: "8 hours", time.Hour: "1 hour",
		90 * time.Minute: "90 minutes", 2 * time.Second: "2 seconds", 1500 * time.Millisecond: "1 second",
	} {
		if got := inWords(d); got != want {
			t.Errorf("inWords(%s) = %q, want %q", d, got, want)
		}
	}
}
