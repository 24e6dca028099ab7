//go:build !race

package unit_test

const raceEnabled = false
