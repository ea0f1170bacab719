package verify

// cpList is the signed checkpoints a Checker checks, oldest first, read one
// at a time: a log's checkpoints need not all be in memory.
type cpList struct {
	n      int        // how many there are
	latest Checkpoint // the last of them, when n > 0
	// next returns the next checkpoint and its root as signed, which a
	// malformed checkpoint may have of another length than a hash.
	next func() (Checkpoint, []byte, bool)

	k    int        // cur's number, from 0
	cur  Checkpoint // the next to check, when ok
	root []byte     // cur's root as signed
	ok   bool
}

// start loads the first checkpoint.
func (l *cpList) start() *cpList {
	l.cur, l.root, l.ok = l.next()
	return l
}

// pop moves on to the next checkpoint.
func (l *cpList) pop() {
	l.k++
	l.cur, l.root, l.ok = l.next()
}

// sliceList is cps, with roots their roots as signed.
func sliceList(cps []Checkpoint, roots [][]byte) *cpList {
	l := &cpList{n: len(cps)}
	if len(cps) > 0 {
		l.latest = cps[len(cps)-1]
	}
	k := 0
	l.next = func() (Checkpoint, []byte, bool) {
		if k == len(cps) {
			return Checkpoint{}, nil, false
		}
		k++
		return cps[k-1], roots[k-1], true
	}
	return l.start()
}
