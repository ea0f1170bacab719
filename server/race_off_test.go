//go:build !race

package server_test

// raceSlowdown is 1 without the race detector: tests hold the contract's
// time bounds exactly.
const raceSlowdown = 1
