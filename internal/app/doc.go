// Package app is the composition root: it reads the configuration from the
// environment it is given, builds the AWS clients once per process (cold
// start) and returns the handlers wired to them. The Lambda mains and the
// local gateway both call New, so local and cloud run the same wiring.
package app
