package postgres

import "context"

// SetCopyAbove sets the batch size above which rows go by COPY, and
// returns a function that restores it.
func SetCopyAbove(n int) func() {
	old := copyAbove
	copyAbove = n
	return func() { copyAbove = old }
}

// Setting returns a run-time setting as the store's connections have it.
func (s *Store) Setting(ctx context.Context, name string) (string, error) {
	var v string
	err := s.pool.QueryRow(ctx, "SELECT current_setting($1)", name).Scan(&v)
	return v, err
}
