// Package verify turns measurements into verdicts: k6's threshold grammar, a closed catalogue
// of metrics, SLA criteria judged per phase, validity of the load itself, headroom against the
// expected peak, and the abortOnFail check a runner makes while a phase runs.
//
// Everything here is a pure function of metrics.Stats and the criteria, so a finished run can be
// judged again from its files. A value that cannot be observed is "no data", and a criterion
// without data fails: nothing passes silently.
package verify
