package reports

import (
	"encoding/xml"
	"fmt"
	"strings"

	"github.com/redline-dev/redline/run"
	"github.com/redline-dev/redline/verify"
)

// JUnit XML, as CI systems (Jenkins, GitLab, GitHub test reporters) read it: one test suite per
// phase, one test case per criterion judged on it plus one for the phase's validity.
type junitSuites struct {
	XMLName  xml.Name     `xml:"testsuites"`
	Name     string       `xml:"name,attr"`
	Tests    int          `xml:"tests,attr"`
	Failures int          `xml:"failures,attr"`
	Skipped  int          `xml:"skipped,attr"`
	Time     string       `xml:"time,attr"`
	Suites   []junitSuite `xml:"testsuite"`
}

type junitSuite struct {
	Name     string      `xml:"name,attr"`
	Tests    int         `xml:"tests,attr"`
	Failures int         `xml:"failures,attr"`
	Skipped  int         `xml:"skipped,attr"`
	Time     string      `xml:"time,attr"`
	Cases    []junitCase `xml:"testcase"`
}

type junitCase struct {
	Name      string        `xml:"name,attr"`
	ClassName string        `xml:"classname,attr"`
	Time      string        `xml:"time,attr,omitempty"`
	Failure   *junitFailure `xml:"failure,omitempty"`
	Skipped   *junitSkipped `xml:"skipped,omitempty"`
}

type junitFailure struct {
	Message string `xml:"message,attr"`
	Type    string `xml:"type,attr"`
	Text    string `xml:",chardata"`
}

type junitSkipped struct {
	Message string `xml:"message,attr"`
}

// JUnit renders the verdict as JUnit XML.
func JUnit(rec *run.Record, v verify.Verdict) ([]byte, error) {
	out := junitSuites{Name: "redline " + rec.PlanName, Time: seconds(ms(rec.Ended.Sub(rec.Started)))}
	for _, pv := range v.Phases {
		s := junitSuite{Name: pv.Phase, Time: seconds(pv.DurationMS)}
		class := "redline." + rec.PlanName + "." + pv.Phase
		switch pv.Status {
		case verify.StatusSkipped:
			s.Cases = append(s.Cases, junitCase{Name: "phase", ClassName: class,
				Skipped: &junitSkipped{Message: strings.Join(pv.Reasons, "; ")}})
		default:
			for _, c := range pv.Criteria {
				jc := junitCase{Name: c.Metric + " " + c.Expression, ClassName: class}
				if !c.OK {
					jc.Failure = &junitFailure{Message: c.Reason, Type: "threshold", Text: criterionText(c)}
				}
				s.Cases = append(s.Cases, jc)
			}
			s.Cases = append(s.Cases, validityCase(pv, class))
		}
		for _, c := range s.Cases {
			s.Tests++
			if c.Failure != nil {
				s.Failures++
			}
			if c.Skipped != nil {
				s.Skipped++
			}
		}
		out.Tests += s.Tests
		out.Failures += s.Failures
		out.Skipped += s.Skipped
		out.Suites = append(out.Suites, s)
	}
	if s, ok := runSuite(rec, v); ok {
		out.Tests += s.Tests
		out.Failures += s.Failures
		out.Suites = append(out.Suites, s)
	}
	data, err := xml.MarshalIndent(out, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encode junit: %w", err)
	}
	return append([]byte(xml.Header), append(data, '\n')...), nil
}

// runSuite holds what is judged of the run as a whole: each run check (the target's audit
// invariants: false fails the run, unknown leaves a pass unproven, so both are failures here)
// and, for an aborted run, that it did not complete. False without any.
func runSuite(rec *run.Record, v verify.Verdict) (junitSuite, bool) {
	s := junitSuite{Name: "run", Time: seconds(ms(rec.Ended.Sub(rec.Started)))}
	class := "redline." + rec.PlanName
	for _, c := range v.Checks {
		jc := junitCase{Name: c.Name, ClassName: class}
		if c.Result != verify.CheckTrue {
			jc.Failure = &junitFailure{Message: c.Name + " is " + c.Result, Type: "check", Text: c.Detail}
		}
		s.Cases = append(s.Cases, jc)
	}
	if v.Status == verify.StatusAborted {
		s.Cases = append(s.Cases, junitCase{Name: "completed", ClassName: class,
			Failure: &junitFailure{Message: rec.Abort, Type: "aborted", Text: strings.Join(v.Reasons, "\n")}})
	}
	for _, c := range s.Cases {
		s.Tests++
		if c.Failure != nil {
			s.Failures++
		}
	}
	return s, len(s.Cases) > 0
}

func validityCase(pv verify.PhaseVerdict, class string) junitCase {
	jc := junitCase{Name: "validity (load as planned)", ClassName: class}
	if pv.Status == verify.StatusInvalid {
		jc.Failure = &junitFailure{Message: "the load was not what the plan asked for", Type: "invalid",
			Text: strings.Join(pv.Reasons, "\n")}
	}
	return jc
}

func criterionText(c verify.CriterionResult) string {
	if c.Observed == nil {
		return fmt.Sprintf("%s %s: no data", c.Metric, c.Expression)
	}
	return strings.TrimSpace(fmt.Sprintf("%s %s: observed %g %s", c.Metric, c.Expression, *c.Observed, c.Unit))
}

func seconds(msec float64) string { return fmt.Sprintf("%.3f", msec/1000) }
