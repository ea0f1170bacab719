//go:build race

package server_test

// raceSlowdown stretches the time bounds of tests built with the race
// detector, which runs goroutines several times slower; plain runs keep the
// contract's bounds.
const raceSlowdown = 5
