//go:build race

package bench

// raceEnabled: the tests run under the race detector, whose shadow memory
// for a freed heap is not given back to the system.
const raceEnabled = true
