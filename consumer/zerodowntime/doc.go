// Package zerodowntime holds the proof that applications built on package
// consumer see no failure while the rotator rotates their API key and
// their webhook signing secret, again and again, on every cause. It has
// only tests: they need the engine, moto and the simulator, which the
// consumer package itself must never import.
package zerodowntime
