package server

import (
	"context"
	"encoding/hex"
	"fmt"
	"github.com/trailhq/trail"
	"net/http"
	"net/url"
	"sync"
	"time"
)

// The System page: the latest signed checkpoint and its age, whether the
// server acknowledges writes, and, checked in the browser (static/system.js
// with static/verify.js), that the checkpoint is signed by the verifier key
// the browser pinned and that the log still contains the last checkpoint
// the browser saw. The page refreshes itself every few seconds with
// background requests, which do not extend the session.
//
// Who sees what. The checkpoint and readiness are public already (GET
// /v1/checkpoint, GET /readyz) and everyone who reads the trail needs them
// to trust it, so every signed-in principal sees them. Disk space and the
// ingest rate are operations figures: a patient or a clinician has no use
// for them, the ingest rate tells minute by minute how busy the hospital's
// systems are, and the free disk space tells someone who means to stop the
// audit trail (it fails closed when the disk is full) how much to send.
// Only principals with the admin grant see them; the others are told that
// they are the administrators'.

// systemStatus is what the System page shows, also its refreshes' answer
// (GET /ui/system/status).
type systemStatus struct {
	Now         time.Time        `json:"now"`
	LogSize     uint64           `json:"log_size"`
	Checkpoint  systemCheckpoint `json:"checkpoint"`
	VerifierKey string           `json:"verifier_key"` // the key the server serves (the browser checks its pinned one)
	Ready       bool             `json:"ready"`
	NotReady    string           `json:"not_ready,omitempty"` // why not
	Operational bool             `json:"operational"`         // disk and ingest are shown (admin)
	Ingest      *systemIngest    `json:"ingest,omitempty"`
	Disk        *systemDisk      `json:"disk,omitempty"`  // a log in a data directory
	Store       *trail.StoreInfo `json:"store,omitempty"` // where the log is kept (admin)
}

// systemCheckpoint is the latest signed checkpoint.
type systemCheckpoint struct {
	Origin string `json:"origin"`
	Size   uint64 `json:"size"`
	Root   string `json:"root"`   // hex
	Signed string `json:"signed"` // the signed note, verified in the browser
	// SignedAt is when this process signed it (nil when it was signed
	// before the server started).
	SignedAt *time.Time `json:"signed_at,omitempty"`
}

// systemIngest is the rate of appends over the last minute or less.
type systemIngest struct {
	PerSecond   float64 `json:"per_second"`
	OverSeconds float64 `json:"over_seconds"` // 0: measuring (a first sample only)
}

// systemDisk is the space of the file system holding the data directory.
type systemDisk struct {
	Free  uint64 `json:"free"` // available to the server
	Total uint64 `json:"total"`
	Error string `json:"error,omitempty"`
}

// systemData is the System page's own data.
type systemData struct{ systemStatus }

// system shows the System page.
func (c *console) system(w http.ResponseWriter, r *http.Request, s *session, p *Principal) {
	c.render(w, r, http.StatusOK, "system", &pageData{Title: "System", Nav: "system", Session: s,
		Page: &systemData{c.systemStatus(p)}})
}

// systemRefresh answers the page's refresh: the status as JSON.
func (c *console) systemRefresh(w http.ResponseWriter, r *http.Request, s *session, p *Principal) {
	writeJSON(w, http.StatusOK, c.systemStatus(p))
}

// systemStatus gathers what p may see of the server's state now.
func (c *console) systemStatus(p *Principal) systemStatus {
	now := time.Now().UTC()
	cp := c.s.l.Checkpoint()
	st := systemStatus{Now: now, LogSize: c.s.l.Size(), VerifierKey: c.s.l.VerifierKey(), Operational: p.Admin,
		Checkpoint: systemCheckpoint{Origin: cp.Origin, Size: cp.Size, Root: hex.EncodeToString(cp.Root[:]), Signed: string(cp.Signed)}}
	if at := c.s.l.Stats().CheckpointTime; !at.IsZero() {
		at = at.UTC()
		st.Checkpoint.SignedAt = &at
	}
	st.NotReady = c.s.notReady()
	st.Ready = st.NotReady == ""
	if !p.Admin {
		return st
	}
	perSec, over := c.ingest.rate(now, st.LogSize)
	st.Ingest = &systemIngest{PerSecond: perSec, OverSeconds: over.Seconds()}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	info := c.s.l.Store(ctx)
	st.Store = &info
	if info.Kind != "files" {
		return st
	}
	st.Disk = &systemDisk{}
	if free, total, err := diskSpace(c.s.l.Dir()); err != nil {
		st.Disk.Error = err.Error()
	} else {
		st.Disk.Free, st.Disk.Total = free, total
	}
	return st
}

// systemConsistency answers the page's request for a consistency proof
// with the API's own answer (GET /v1/proof/consistency, public).
func (c *console) systemConsistency(w http.ResponseWriter, r *http.Request, s *session, p *Principal) {
	q := url.Values{}
	for _, k := range []string{"from", "to"} {
		if v := r.URL.Query().Get(k); v != "" {
			q.Set(k, v)
		}
	}
	cw := &captured{h: http.Header{}}
	c.s.consistency(cw, c.apiRequest(r, "/v1/proof/consistency", q, nil))
	for _, k := range []string{"Content-Type", "Retry-After"} {
		if v := cw.h.Get(k); v != "" {
			w.Header().Set(k, v)
		}
	}
	w.WriteHeader(max(cw.status, http.StatusOK))
	w.Write(cw.body.Bytes())
}

// Signed-checkpoint age and the other figures, as the page writes them
// before its script takes over.

// Age is how long ago the checkpoint was signed, in words.
func (d *systemData) Age() string {
	if d.Checkpoint.SignedAt == nil {
		return "signed before this server started"
	}
	return ago(d.Now.Sub(*d.Checkpoint.SignedAt)) + " ago"
}

// Unit is "event" or "events", as the checkpoint's size needs.
func (d *systemData) Unit() string {
	if d.Checkpoint.Size == 1 {
		return "event"
	}
	return "events"
}

// IngestText is the ingest rate in words.
func (d *systemData) IngestText() string {
	if d.Ingest == nil || d.Ingest.OverSeconds < 1 {
		return "Measuring… (the rate shows at the next refresh)"
	}
	return fmt.Sprintf("%.1f events/s over the last %s", d.Ingest.PerSecond, ago(time.Duration(d.Ingest.OverSeconds*float64(time.Second))))
}

// DiskText is the free disk space in words.
func (d *systemData) DiskText() string {
	if d.Disk == nil {
		return ""
	}
	if d.Disk.Error != "" {
		return "Unknown: " + d.Disk.Error
	}
	return fmt.Sprintf("%s free of %s (%.0f%% free)", bytesText(d.Disk.Free), bytesText(d.Disk.Total), 100*float64(d.Disk.Free)/float64(max(d.Disk.Total, 1)))
}

// ago writes a duration for people: "12 s", "4 min", "3 h 5 min".
func ago(d time.Duration) string {
	d = max(d, 0).Round(time.Second)
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%d s", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%d min", int(d.Minutes()))
	}
	return fmt.Sprintf("%d h %d min", int(d.Hours()), int(d.Minutes())%60)
}

// bytesText writes a size in binary units.
func bytesText(n uint64) string {
	units := []string{"bytes", "KiB", "MiB", "GiB", "TiB", "PiB"}
	v, i := float64(n), 0
	for v >= 1024 && i < len(units)-1 {
		v, i = v/1024, i+1
	}
	if i == 0 {
		return fmt.Sprintf("%d bytes", n)
	}
	return fmt.Sprintf("%.1f %s", v, units[i])
}

// ingestSampler estimates the ingest rate from the log's size, sampled
// when a System page asks (at most every ingestSampleEvery), from samples
// of the last ingestWindow only: its memory is bounded and it runs no
// goroutine. The size counts every event appended, Trail's read records
// included.
type ingestSampler struct {
	mu      sync.Mutex
	samples []sizeSample // oldest first
}

type sizeSample struct {
	at   time.Time
	size uint64
}

const (
	ingestWindow      = time.Minute
	ingestSampleEvery = 2 * time.Second
)

// rate samples size at now and returns the events appended per second
// since the oldest sample kept, and over how long (0: this is the first).
func (g *ingestSampler) rate(now time.Time, size uint64) (float64, time.Duration) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if n := len(g.samples); n == 0 || now.Sub(g.samples[n-1].at) >= ingestSampleEvery {
		g.samples = append(g.samples, sizeSample{now, size})
	}
	for len(g.samples) > 1 && now.Sub(g.samples[0].at) > ingestWindow {
		g.samples = g.samples[1:] // append copies the live part when it grows
	}
	first := g.samples[0]
	over := now.Sub(first.at)
	if over <= 0 || size < first.size {
		return 0, 0
	}
	return float64(size-first.size) / over.Seconds(), over
}
