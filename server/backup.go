package server

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/trailhq/trail"
)

// routeBackup streams a backup of the data directory (admin only).
const routeBackup = "GET /v1/admin/backup"

// backup serves GET /v1/admin/backup: a tar archive of a consistent copy of
// the data directory up to the latest signed checkpoint (trail.Log.Backup),
// taken while appends go on, without the signing key and the admin token,
// which never leave the server's disk this way. It is the admin's read with
// purpose=system: recorded in trail/access with the number of events it
// carries, and kept out of every patient's view; anyone else gets 403,
// recorded too. A server whose log is in PostgreSQL answers 501: its
// backup is the database's (pg_dump).
//
// The records are stored before the first byte is sent. The archive ends
// with the backup's manifest; a failure while it streams aborts the
// connection, so the client sees an archive cut short, never a whole one.
func (s *Server) backup(w http.ResponseWriter, r *http.Request, p *Principal) *problem {
	if r.Method == http.MethodHead { // the GET pattern takes HEAD too; a HEAD would copy for nothing
		w.Header().Set("Allow", http.MethodGet)
		return newProblem(http.StatusMethodNotAllowed, "method_not_allowed", r.URL.Path+" takes GET only")
	}
	ps := parseParams(r.URL.RawQuery, "purpose")
	if ps.err != nil {
		return ps.err
	}
	if v := ps.str("purpose"); ps.has("purpose") && v != purposeSystem {
		return badRequest(fmt.Sprintf("purpose=%q: a backup is read with purpose=system (or no purpose)", v))
	}
	rd, pr := s.newRead(r, p, routeBackup, &ps)
	if pr != nil {
		return pr
	}
	if !p.Admin {
		pr := newProblem(http.StatusForbidden, "forbidden", fmt.Sprintf("principal %q has no admin grant: a backup is the admin's", p.Name))
		if err := rd.record(trail.OutcomeMinorFailure, 0); err != nil {
			return s.auditProblem(err)
		}
		return pr
	}
	if s.l.Dir() == "" {
		return newProblem(http.StatusNotImplemented, "backup_unsupported",
			"this server keeps its log in PostgreSQL: back up the database with pg_dump (and keep the signing key file apart); trail backup copies data directories only")
	}
	rd.purpose, rd.system = purposeSystem, true
	cp := s.l.Checkpoint()
	if pr := rd.allow(int(cp.Size)); pr != nil {
		return pr
	}
	w.Header().Set("Content-Type", "application/x-tar")
	w.Header().Set("Content-Disposition", `attachment; filename="trail-backup-`+strconv.FormatUint(cp.Size, 10)+`.tar"`)
	w.Header().Set("Cache-Control", "no-store")
	if _, err := s.l.Backup(r.Context(), w, trail.BackupOptions{Checkpoint: &cp}); err != nil {
		if !errors.Is(err, r.Context().Err()) {
			s.log.Error("backup", "err", err)
		}
		panic(http.ErrAbortHandler)
	}
	return nil
}
