package server

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/trailhq/trail"
)

// getEvent serves GET /v1/events/{index}: the exact stored bytes.
func (s *Server) getEvent(w http.ResponseWriter, r *http.Request, p *Principal) *problem {
	ps := parseParams(r.URL.RawQuery, purposeParams...)
	if ps.err != nil {
		return ps.err
	}
	i, pr := pathIndex(r.PathValue("index"))
	if pr != nil {
		return pr
	}
	rd, pr := s.newRead(r, p, "GET /v1/events/{index}", &ps)
	if pr != nil {
		return pr
	}
	rec, pr := s.readEvent(rd.withIndex(i), i)
	if pr != nil {
		if pr.Status == http.StatusNotFound {
			if apr := rd.allow(0); apr != nil {
				return apr
			}
		}
		return pr
	}
	if pr := rd.allow(1); pr != nil {
		return pr
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write(rec)
	return nil
}

// readEvent reads event i, refusing (and recording) it when the read may not
// see its stream.
func (s *Server) readEvent(rd *read, i uint64) ([]byte, *problem) {
	rec, err := s.l.Read(i)
	if errors.Is(err, trail.ErrNotFound) {
		return nil, notFound(fmt.Sprintf("no event %d: the log has %d events", i, s.l.Size()))
	}
	if err != nil {
		return nil, s.readProblem(err)
	}
	stream, err := trail.RecordStream(rec)
	if err != nil {
		return nil, s.internal("read event", err)
	}
	if !rd.canRecord(stream, rec) {
		// The record names the stream; the answer does not, so that reading
		// by index cannot map which streams (patients) have events.
		pr := rd.forbid(stream)
		if pr.Status == http.StatusForbidden {
			pr.Detail = fmt.Sprintf("principal %q has no read grant for the stream of event %d", rd.p.Name, i)
		}
		return nil, pr
	}
	rd.namePatient(stream)
	rd.returned(rec)
	return rec, nil
}

func (s *Server) internal(what string, err error) *problem {
	s.log.Error(what, "err", err)
	return newProblem(http.StatusInternalServerError, "internal", what+": "+err.Error())
}

// inclusionReply is an inclusion proof.
type inclusionReply struct {
	Index    uint64       `json:"index"`
	Size     uint64       `json:"size"`
	LeafHash trail.Hash   `json:"leaf_hash"`
	Hashes   []trail.Hash `json:"hashes"`
}

// inclusion serves GET /v1/events/{index}/proof?size=N; size defaults to the
// latest checkpoint's.
func (s *Server) inclusion(w http.ResponseWriter, r *http.Request, p *Principal) *problem {
	ps := parseParams(r.URL.RawQuery, append([]string{"size"}, purposeParams...)...)
	i, pr := pathIndex(r.PathValue("index"))
	if pr != nil {
		return pr
	}
	size := ps.uint("size", 0)
	if ps.err != nil {
		return ps.err
	}
	rd, pr := s.newRead(r, p, "GET /v1/events/{index}/proof", &ps)
	if pr != nil {
		return pr
	}
	tree := s.l.Size()
	if !ps.has("size") {
		size = s.l.Checkpoint().Size
	}
	if i >= size || size > tree {
		detail := fmt.Sprintf("no inclusion proof of event %d in a tree of size %d: need index < size ≤ %d (the tree's size)", i, size, tree)
		if !ps.has("size") {
			detail += fmt.Sprintf("; the latest checkpoint covers %d events: wait for the next one or pass size", size)
		}
		return badRequest(detail)
	}
	rec, pr := s.readEvent(rd.withIndex(i), i)
	if pr != nil {
		return pr
	}
	hashes, err := s.l.InclusionProof(i, size)
	if err != nil {
		return s.internal("inclusion proof", err)
	}
	if pr := rd.allow(1); pr != nil {
		return pr
	}
	writeJSON(w, http.StatusOK, inclusionReply{Index: i, Size: size, LeafHash: trail.LeafHash(rec), Hashes: nonNil(hashes)})
	return nil
}

// consistencyReply is a consistency proof.
type consistencyReply struct {
	From   uint64       `json:"from"`
	To     uint64       `json:"to"`
	Hashes []trail.Hash `json:"hashes"`
}

// consistency serves GET /v1/proof/consistency?from=&to= (public); to
// defaults to the latest checkpoint's size.
func (s *Server) consistency(w http.ResponseWriter, r *http.Request) {
	ps := parseParams(r.URL.RawQuery, "from", "to")
	if ps.err == nil && !ps.has("from") {
		ps.err = badRequest("query parameter from is required: the tree size you hold")
	}
	from := ps.uint("from", 0)
	to := ps.uint("to", 0)
	if ps.err != nil {
		s.writeProblem(w, r, ps.err)
		return
	}
	if !ps.has("to") {
		to = s.l.Checkpoint().Size
	}
	tree := s.l.Size()
	if from > to || to > tree {
		s.writeProblem(w, r, badRequest(fmt.Sprintf("no consistency proof from %d to %d: need from ≤ to ≤ %d (the tree's size)", from, to, tree)))
		return
	}
	hashes, err := s.l.ConsistencyProof(from, to)
	if err != nil {
		s.writeProblem(w, r, s.internal("consistency proof", err))
		return
	}
	writeJSON(w, http.StatusOK, consistencyReply{From: from, To: to, Hashes: nonNil(hashes)})
}

func nonNil(h []trail.Hash) []trail.Hash {
	if h == nil {
		return []trail.Hash{}
	}
	return h
}

// checkpoint serves GET /v1/checkpoint: the latest signed note (public).
func (s *Server) checkpoint(w http.ResponseWriter, r *http.Request) {
	if ps := parseParams(r.URL.RawQuery); ps.err != nil {
		s.writeProblem(w, r, ps.err)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Write(s.l.Checkpoint().Signed)
}

// streamHead serves GET /v1/streams/{stream...}.
func (s *Server) streamHead(w http.ResponseWriter, r *http.Request, p *Principal) *problem {
	ps := parseParams(r.URL.RawQuery, purposeParams...)
	if ps.err != nil {
		return ps.err
	}
	stream, pr := streamName(r.PathValue("stream"))
	if pr != nil {
		return pr
	}
	rd, pr := s.newRead(r, p, routeStreamHead, &ps)
	if pr != nil {
		return pr
	}
	rd.stream = stream
	if !rd.can(stream) {
		return rd.forbid(stream)
	}
	rd.namePatient(stream)
	h, err := s.l.StreamHead(r.Context(), stream)
	if err != nil && !errors.Is(err, trail.ErrNotFound) {
		return s.readProblem(err)
	}
	if pr := rd.allow(0); pr != nil {
		return pr
	}
	if err != nil {
		return notFound(fmt.Sprintf("stream %q has no events", stream))
	}
	writeJSON(w, http.StatusOK, h)
	return nil
}

// readProblem maps an engine error on a read.
func (s *Server) readProblem(err error) *problem {
	if errors.Is(err, trail.ErrClosed) {
		pr := newProblem(http.StatusServiceUnavailable, "closing", "the server is shutting down; retry")
		pr.retryAfter = 1
		return pr
	}
	if errors.Is(err, trail.ErrFailed) {
		return newProblem(http.StatusServiceUnavailable, "failed", err.Error())
	}
	if ie, ok := s.integrityFailure(err); ok {
		return newProblem(http.StatusInternalServerError, "integrity", fmt.Sprintf(
			"event %d is stored with bytes that do not match the Merkle tree; it is not served. "+
				"The operator must run trail verify on the data directory", ie.Index))
	}
	return s.internal("read", err)
}

// integrityFailure counts and logs a read that found a stored record not
// matching the tree: the record was altered on disk, or the disk damaged it.
// The rest of the log is served and appends go on.
func (s *Server) integrityFailure(err error) (*trail.IntegrityError, bool) {
	var ie *trail.IntegrityError
	if !errors.As(err, &ie) {
		return nil, false
	}
	s.metrics.integrity.Inc()
	s.log.Error("tampering or disk damage: a stored record does not match the Merkle tree; not served (run trail verify)",
		"index", ie.Index, "err", ie.Err)
	return ie, true
}
