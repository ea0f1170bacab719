package postgres

// SetCopyAbove sets the batch size above which rows go by COPY, and
// returns a function that restores it.
func SetCopyAbove(n int) func() {
	old := copyAbove
	copyAbove = n
	return func() { copyAbove = old }
}
