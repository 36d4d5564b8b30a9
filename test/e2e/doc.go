// Package e2e holds Sinew's end-to-end tests: they build the real binaries,
// start them as processes on real sockets and files, and check the system
// from the outside, as an operator or a peer system would.
package e2e
