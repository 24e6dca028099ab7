package plan

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// ErrInvalid is wrapped by every *Error: the plan file has problems.
var ErrInvalid = errors.New("invalid plan")

// Problem is one thing wrong with a plan file, located for a person and an editor.
type Problem struct {
	File    string
	Line    int    // 1-based; 0 when the problem has no place in the file
	Column  int    // 1-based; 0 when unknown
	Path    string // where in the plan: phases[2].load.rate; "" for the file as a whole
	Message string
}

// String formats p as file:line:col: path: message, dropping the parts p does not have.
func (p Problem) String() string {
	var b strings.Builder
	b.WriteString(p.File)
	if p.Line > 0 {
		b.WriteString(":" + strconv.Itoa(p.Line))
		if p.Column > 0 {
			b.WriteString(":" + strconv.Itoa(p.Column))
		}
	}
	b.WriteString(": ")
	if p.Path != "" {
		b.WriteString(p.Path + ": ")
	}
	b.WriteString(p.Message)
	return b.String()
}

// Error is every problem found in a plan file, in file order.
type Error struct {
	Problems []Problem
}

// Error returns the problems, one a line.
func (e *Error) Error() string {
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}

// Unwrap makes errors.Is(err, ErrInvalid) hold.
func (e *Error) Unwrap() error { return ErrInvalid }

// reporter collects problems, bounded by problemsMax.
type reporter struct {
	file     string
	problems []Problem
	dropped  int
}

// at reports a problem located at node n (nil: the file as a whole).
func (r *reporter) at(n *yaml.Node, path, format string, args ...any) {
	p := Problem{File: r.file, Path: path, Message: fmt.Sprintf(format, args...)}
	if n != nil {
		p.Line, p.Column = n.Line, n.Column
	}
	r.add(p)
}

func (r *reporter) add(p Problem) {
	if len(r.problems) >= ProblemsMax {
		r.dropped++
		return
	}
	r.problems = append(r.problems, p)
}

// count is how many problems were reported, shown or not.
func (r *reporter) count() int { return len(r.problems) + r.dropped }

// err returns the problems sorted by place in the file, or nil.
func (r *reporter) err() error {
	if len(r.problems) == 0 {
		return nil
	}
	out := slices.Clone(r.problems)
	slices.SortStableFunc(out, func(a, b Problem) int {
		return cmp.Or(cmp.Compare(a.Line, b.Line), cmp.Compare(a.Column, b.Column))
	})
	if r.dropped > 0 {
		out = append(out, Problem{File: r.file, Message: fmt.Sprintf("%d more problems not shown (limit %d)", r.dropped, ProblemsMax)})
	}
	return &Error{Problems: out}
}
