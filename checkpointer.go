package trail

import "time"

// checkpointer has the store sign a checkpoint every CheckpointInterval
// when the log has grown, until Close.
func (l *Log) checkpointer() {
	defer close(l.cpDone)
	t := time.NewTicker(l.cfg.CheckpointInterval)
	defer t.Stop()
	for {
		select {
		case <-l.closing:
			return
		case <-t.C:
			if l.Err() != nil {
				continue
			}
			if err := l.checkpoint(); err != nil {
				l.fail(err)
			}
		}
	}
}

// checkpoint has the store sign and keep a checkpoint of everything durable,
// if the log has grown since the last one (see the store for the order of
// its writes: a checkpoint never covers a record or a tree hash that is not
// durable).
func (l *Log) checkpoint() error {
	l.cpMu.Lock()
	defer l.cpMu.Unlock()
	return l.st.Checkpoint(l.durable.load(), l.applied.load())
}
