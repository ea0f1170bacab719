package postgres

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/proof"

	"github.com/trailhq/trail/internal/store"
	"github.com/trailhq/trail/internal/tree"
)

// Read returns record i.
func (s *Store) Read(i uint64) ([]byte, error) {
	var rec []byte
	err := s.pool.QueryRow(context.Background(), "SELECT record FROM trail_events WHERE idx = $1", int64(i)).Scan(&rec)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("record %d: not in the log", i)
	}
	if err != nil {
		return nil, readErr(err)
	}
	return rec, nil
}

func readErr(err error) error {
	if unavailable(err) {
		return fmt.Errorf("%w: %v", store.ErrUnavailable, err)
	}
	return fmt.Errorf("trail: postgres: %w", err)
}

// Head returns the last event of a stream.
func (s *Store) Head(stream string) (store.Head, bool, error) {
	var h store.Head
	var seq, idx int64
	var leaf []byte
	err := s.pool.QueryRow(context.Background(),
		"SELECT stream_seq, idx, leaf FROM trail_events WHERE stream = $1 ORDER BY stream_seq DESC LIMIT 1", stream).Scan(&seq, &idx, &leaf)
	if errors.Is(err, pgx.ErrNoRows) {
		return h, false, nil
	}
	if err != nil {
		return h, false, readErr(err)
	}
	h.Seq, h.Index = uint64(seq), uint64(idx)
	copy(h.LeafHash[:], leaf)
	return h, true, nil
}

// ID returns the index of the event with the given id.
func (s *Store) ID(id string) (uint64, bool, error) {
	var idx int64
	err := s.pool.QueryRow(context.Background(), "SELECT idx FROM trail_events WHERE id = $1", id).Scan(&idx)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, readErr(err)
	}
	return uint64(idx), true, nil
}

// Leaf returns the leaf hash of record i.
func (s *Store) Leaf(i uint64) ([]byte, error) {
	var leaf []byte
	err := s.pool.QueryRow(context.Background(), "SELECT leaf FROM trail_events WHERE idx = $1", int64(i)).Scan(&leaf)
	if err != nil {
		return nil, readErr(err)
	}
	return leaf, nil
}

// ReadLeaves reads the leaves from index from into buf.
func (s *Store) ReadLeaves(from uint64, buf []byte) (int, error) {
	n := len(buf) / store.HashSize
	rows, err := s.pool.Query(context.Background(),
		"SELECT leaf FROM trail_events WHERE idx >= $1 AND idx < $2 ORDER BY idx", int64(from), int64(from)+int64(n))
	if err != nil {
		return 0, readErr(err)
	}
	defer rows.Close()
	k := 0
	for rows.Next() {
		var leaf []byte
		if err := rows.Scan(&leaf); err != nil {
			return k, readErr(err)
		}
		copy(buf[k*store.HashSize:], leaf)
		k++
	}
	return k, readErr0(rows.Err())
}

func readErr0(err error) error {
	if err == nil {
		return nil
	}
	return readErr(err)
}

// nodes reads the hashes of tree nodes: leaves from trail_events, the
// perfect subtrees above them from trail_tree.
func (s *Store) nodes(ctx context.Context, q querier, ids []compact.NodeID) ([][]byte, error) {
	out := make([][]byte, len(ids))
	var leafIdx, levels, idxs []int64
	for _, id := range ids {
		if id.Level == 0 {
			leafIdx = append(leafIdx, int64(id.Index))
		} else {
			levels, idxs = append(levels, int64(id.Level)), append(idxs, int64(id.Index))
		}
	}
	found := make(map[compact.NodeID][]byte, len(ids))
	if len(leafIdx) > 0 {
		rows, err := q.Query(ctx, "SELECT idx, leaf FROM trail_events WHERE idx = ANY($1)", leafIdx)
		if err != nil {
			return nil, err
		}
		for rows.Next() {
			var i int64
			var h []byte
			if err := rows.Scan(&i, &h); err != nil {
				rows.Close()
				return nil, err
			}
			found[compact.NewNodeID(0, uint64(i))] = h
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, err
		}
	}
	if len(levels) > 0 {
		rows, err := q.Query(ctx, `SELECT t.level, t.idx, t.hash FROM trail_tree t
			JOIN unnest($1::bigint[], $2::bigint[]) AS w(level, idx) ON t.level = w.level AND t.idx = w.idx`, levels, idxs)
		if err != nil {
			return nil, err
		}
		for rows.Next() {
			var l int16
			var i int64
			var h []byte
			if err := rows.Scan(&l, &i, &h); err != nil {
				rows.Close()
				return nil, err
			}
			found[compact.NewNodeID(uint(l), uint64(i))] = h
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, err
		}
	}
	for k, id := range ids {
		h, ok := found[id]
		if !ok {
			return nil, fmt.Errorf("tree node %d/%d is missing", id.Level, id.Index)
		}
		out[k] = h
	}
	return out, nil
}

// checkSize refuses sizes beyond the committed log.
func (s *Store) checkSize(ctx context.Context, size uint64) error {
	n, _, err := s.end(ctx, s.pool)
	if err != nil {
		return readErr(err)
	}
	if size > n {
		return fmt.Errorf("%w: size %d (the log has %d)", store.ErrOutOfRange, size, n)
	}
	return nil
}

// Root returns the root of the tree of the first size records.
func (s *Store) Root(size uint64) ([]byte, error) {
	ctx := context.Background()
	if err := s.checkSize(ctx, size); err != nil {
		return nil, err
	}
	return s.root(ctx, s.pool, size)
}

func (s *Store) root(ctx context.Context, q querier, size uint64) ([]byte, error) {
	if size == 0 {
		return tree.EmptyRoot(), nil
	}
	hashes, err := s.nodes(ctx, q, compact.RangeNodes(0, size, nil))
	if err != nil {
		return nil, readErr(err)
	}
	var root []byte
	for i := len(hashes) - 1; i >= 0; i-- {
		if root == nil {
			root = hashes[i]
		} else {
			root = tree.HashChildren(hashes[i], root)
		}
	}
	return root, nil
}

// InclusionProof returns the proof that leaf index is in the tree of size.
func (s *Store) InclusionProof(index, size uint64) ([][]byte, error) {
	ctx := context.Background()
	if err := s.checkSize(ctx, size); err != nil {
		return nil, err
	}
	nodes, err := proof.Inclusion(index, size)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", store.ErrOutOfRange, err)
	}
	return s.fetch(ctx, nodes)
}

// ConsistencyProof returns the proof that the tree of size from is a prefix
// of the tree of size to.
func (s *Store) ConsistencyProof(from, to uint64) ([][]byte, error) {
	ctx := context.Background()
	if err := s.checkSize(ctx, to); err != nil {
		return nil, err
	}
	nodes, err := proof.Consistency(from, to)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", store.ErrOutOfRange, err)
	}
	return s.fetch(ctx, nodes)
}

func (s *Store) fetch(ctx context.Context, nodes proof.Nodes) ([][]byte, error) {
	hashes, err := s.nodes(ctx, s.pool, nodes.IDs)
	if err != nil {
		return nil, readErr(err)
	}
	out, err := nodes.Rehash(hashes, tree.HashChildren)
	if out == nil {
		out = [][]byte{}
	}
	return out, err
}

// Snapshot fixes the log's end for a query: rows past it are left out.
func (s *Store) Snapshot() (store.Snapshot, error) {
	n, _, err := s.end(context.Background(), s.pool)
	if err != nil {
		return nil, readErr(err)
	}
	return &snapshot{s: s, end: n}, nil
}

type snapshot struct {
	s   *Store
	end uint64
}

func (sn *snapshot) End() uint64  { return sn.end }
func (sn *snapshot) Close() error { return nil }

// candidatePage is how many indexes one query of the candidates reads.
const candidatePage = 512

// Candidates returns the indexes in [lo, hi) of the events matching f, a
// page at a time, through the indexes on stream, patient, actor and type.
func (sn *snapshot) Candidates(ctx context.Context, f store.Filter, lo, hi uint64) (func() (uint64, bool, error), error) {
	var where []string
	var args []any
	arg := func(v any) string {
		args = append(args, v)
		return fmt.Sprintf("$%d", len(args))
	}
	for _, c := range []struct{ col, v string }{
		{"stream", f.Stream}, {"patient", f.Patient}, {"actor", f.Actor},
		{"type", f.Type}, {"action", f.Action}, {"outcome", f.Outcome},
	} {
		if c.v != "" {
			where = append(where, c.col+" = "+arg(c.v))
		}
	}
	if sc := f.Scope; sc != nil && f.Stream == "" {
		var any []string
		var exact, likes []string
		for _, p := range sc.Patterns {
			if prefix, ok := strings.CutSuffix(p, "/*"); ok {
				likes = append(likes, likeEscape(prefix+"/")+"%")
			} else {
				exact = append(exact, p)
			}
		}
		if len(exact) > 0 {
			any = append(any, "stream = ANY("+arg(exact)+")")
		}
		if len(likes) > 0 {
			any = append(any, "stream LIKE ANY("+arg(likes)+")")
		}
		if sc.Unreserved {
			any = append(any, "NOT (stream = 'trail' OR stream LIKE 'trail/%')")
		}
		if len(any) == 0 {
			return func() (uint64, bool, error) { return 0, false, nil }, nil
		}
		where = append(where, "("+strings.Join(any, " OR ")+")")
	}
	order, cmp := "ASC", ">="
	if f.Desc {
		order, cmp = "DESC", "<="
	}
	loArg, hiArg, fromArg := arg(int64(lo)), arg(int64(hi)), arg(int64(0))
	where = append(where, "idx >= "+loArg, "idx < "+hiArg, "idx "+cmp+" "+fromArg)
	sql := "SELECT idx FROM trail_events WHERE " + strings.Join(where, " AND ") +
		" ORDER BY idx " + order + fmt.Sprintf(" LIMIT %d", candidatePage)
	from, done := int64(lo), lo >= hi
	if f.Desc {
		from = int64(hi) - 1
	}
	var page []uint64
	next := func() (uint64, bool, error) {
		for len(page) == 0 {
			if done {
				return 0, false, nil
			}
			args[len(args)-1] = from
			rows, err := sn.s.pool.Query(ctx, sql, args...)
			if err != nil {
				return 0, false, readErr(err)
			}
			for rows.Next() {
				var i int64
				if err := rows.Scan(&i); err != nil {
					rows.Close()
					return 0, false, readErr(err)
				}
				page = append(page, uint64(i))
			}
			rows.Close()
			if err := rows.Err(); err != nil {
				return 0, false, readErr(err)
			}
			if len(page) < candidatePage {
				done = true
			} else if last := int64(page[len(page)-1]); f.Desc {
				from = last - 1
				done = last == 0
			} else {
				from = last + 1
			}
		}
		i := page[0]
		page = page[1:]
		return i, true, nil
	}
	return next, nil
}

// likeEscape escapes LIKE's wildcards (a stream name may hold "_").
func likeEscape(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)
	return r.Replace(s)
}

var _ store.Batcher = (*Store)(nil)

// IDs returns the indexes of the stored ids among ids, in one query.
func (s *Store) IDs(ids []string) (map[string]uint64, error) {
	rows, err := s.pool.Query(context.Background(), "SELECT id, idx FROM trail_events WHERE id = ANY($1)", ids)
	if err != nil {
		return nil, readErr(err)
	}
	defer rows.Close()
	out := make(map[string]uint64)
	for rows.Next() {
		var id string
		var idx int64
		if err := rows.Scan(&id, &idx); err != nil {
			return nil, readErr(err)
		}
		out[id] = uint64(idx)
	}
	return out, readErr0(rows.Err())
}

// Heads returns the heads of the streams that have events, in one query.
func (s *Store) Heads(streams []string) (map[string]store.Head, error) {
	rows, err := s.pool.Query(context.Background(), `SELECT h.stream, e.stream_seq, e.idx, e.leaf
		FROM unnest($1::text[]) AS h(stream)
		CROSS JOIN LATERAL (SELECT stream_seq, idx, leaf FROM trail_events WHERE stream = h.stream
			ORDER BY stream_seq DESC LIMIT 1) e`, streams)
	if err != nil {
		return nil, readErr(err)
	}
	defer rows.Close()
	out := make(map[string]store.Head)
	for rows.Next() {
		var stream string
		var seq, idx int64
		var leaf []byte
		if err := rows.Scan(&stream, &seq, &idx, &leaf); err != nil {
			return nil, readErr(err)
		}
		h := store.Head{Seq: uint64(seq), Index: uint64(idx)}
		copy(h.LeafHash[:], leaf)
		out[stream] = h
	}
	return out, readErr0(rows.Err())
}
