package load

import (
	"errors"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestTemplateRender(t *testing.T) {
	v := values{seq: 42, uid: 7, uid2: 9, amount: 1250, run: "r-1",
		uuid: [16]byte{0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc, 0x4d, 0xef, 0x81, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef}}
	tests := []struct {
		name, src, want string
		uses            varSet
	}{
		{"empty", "", "", 0},
		{"literal", "/health", "/health", 0},
		{"one variable", "/accounts/{{uid}}", "/accounts/7", usesUID},
		{"every variable", `{"from":{{uid}},"to":{{uid2}},"amount":{{amount}},"key":"{{uuid}}","seq":{{seq}},"run":"{{run}}"}`,
			`{"from":7,"to":9,"amount":1250,"key":"12345678-9abc-4def-8123-456789abcdef","seq":42,"run":"r-1"}`,
			usesUID | usesUID2 | usesAmount | usesUUID | usesSeq | usesRun},
		{"adjacent", "{{seq}}{{seq}}", "4242", usesSeq},
		{"braces that are not a variable", "{x} }} {", "{x} }} {", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tmpl, err := parseTemplate(tt.src)
			if err != nil {
				t.Fatal(err)
			}
			if got := string(tmpl.render(nil, &v)); got != tt.want {
				t.Errorf("render = %q, want %q", got, tt.want)
			}
			if tmpl.uses != tt.uses {
				t.Errorf("uses = %b, want %b", tmpl.uses, tt.uses)
			}
		})
	}
}

func TestParseTemplateErrors(t *testing.T) {
	for _, src := range []string{"{{", "/a/{{uid", "{{ uid }}", "{{UID}}", "{{user}}", "{{}}", "{{{uid}}}", "{{uid}}{{"} {
		_, err := parseTemplate(src)
		if !errors.Is(err, ErrBadTemplate) {
			t.Errorf("parseTemplate(%q) = %v, want ErrBadTemplate", src, err)
		}
	}
}

func TestRenderDoesNotAllocate(t *testing.T) {
	tmpl, err := parseTemplate(`{"from":{{uid}},"to":{{uid2}},"amount":{{amount}},"key":"{{uuid}}","run":"{{run}}"}`)
	if err != nil {
		t.Fatal(err)
	}
	vars := Vars{UIDMin: 1, UIDMax: 1000, AmountMinorMin: 1, AmountMinorMax: 100, RunID: "r"}
	buf := make([]byte, 0, 256)
	var v values
	allocs := testing.AllocsPerRun(1000, func() {
		r := newArrivalRand(1, 99)
		v.draw(&r, &vars, tmpl.uses, 99)
		buf = tmpl.render(buf[:0], &v)
	})
	if allocs != 0 {
		t.Errorf("%v allocations per render, want 0", allocs)
	}
}

var uuidV4 = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

func TestDrawValues(t *testing.T) {
	vars := Vars{UIDMin: 10, UIDMax: 12, AmountMinorMin: 100, AmountMinorMax: 199, RunID: "run"}
	seenUID, seenAmount, seenUUID := map[int64]bool{}, map[int64]bool{}, map[string]bool{}
	for seq := int64(0); seq < 2000; seq++ {
		r := newArrivalRand(7, seq)
		var v values
		v.draw(&r, &vars, usesUID|usesUID2|usesAmount|usesUUID, seq)
		if v.uid < 10 || v.uid > 12 || v.uid2 < 10 || v.uid2 > 12 || v.uid == v.uid2 {
			t.Fatalf("seq %d: uid %d, uid2 %d, want distinct, in 10..12", seq, v.uid, v.uid2)
		}
		if v.amount < 100 || v.amount > 199 {
			t.Fatalf("seq %d: amount %d, want 100..199", seq, v.amount)
		}
		u := string(appendUUID(nil, &v.uuid))
		if !uuidV4.MatchString(u) {
			t.Fatalf("seq %d: uuid %q is not a v4 UUID", seq, u)
		}
		seenUID[v.uid], seenAmount[v.amount], seenUUID[u] = true, true, true
		// The same seed and arrival give the same values, whichever worker renders them.
		r2 := newArrivalRand(7, seq)
		var w values
		w.draw(&r2, &vars, usesUID|usesUID2|usesAmount|usesUUID, seq)
		if diff := cmp.Diff(v, w, cmp.AllowUnexported(values{})); diff != "" {
			t.Fatalf("seq %d drawn twice differs:\n%s", seq, diff)
		}
	}
	if len(seenUID) != 3 || len(seenAmount) < 95 || len(seenUUID) != 2000 {
		t.Errorf("saw %d uids, %d amounts, %d uuids; want 3, about 100, 2000", len(seenUID), len(seenAmount), len(seenUUID))
	}
}

func TestMixPicksByWeight(t *testing.T) {
	m, err := newMix([]Request{
		{Name: "a", Weight: 1, Method: "GET", URL: "http://127.0.0.1/a"},
		{Name: "b", Weight: 3, Method: "GET", URL: "http://127.0.0.1/b"},
	})
	if err != nil {
		t.Fatal(err)
	}
	counts := make([]int, 2)
	for seq := int64(0); seq < 40_000; seq++ {
		r := newArrivalRand(3, seq)
		counts[m.pick(&r)]++
	}
	if counts[0] < 9_500 || counts[0] > 10_500 {
		t.Errorf("picked %v, want about 10000 and 30000", counts)
	}
}

// FuzzParseTemplate checks that the parser never panics, that a template it accepts renders
// without panicking, and that writing its parts back gives the source: nothing is lost or
// invented.
func FuzzParseTemplate(f *testing.F) {
	for _, s := range []string{"", "/pay", "/accounts/{{uid}}", `{"a":{{amount}},"k":"{{uuid}}"}`, "{{", "}}{{run}}{{seq}}", "{{{uid2}}}"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		tmpl, err := parseTemplate(s)
		if err != nil {
			if !errors.Is(err, ErrBadTemplate) {
				t.Fatalf("error %v does not wrap ErrBadTemplate", err)
			}
			return
		}
		var b strings.Builder
		for _, p := range tmpl.parts {
			if p.v == varNone {
				b.WriteString(p.lit)
			} else {
				b.WriteString("{{" + varNames[p.v] + "}}")
			}
		}
		if b.String() != s {
			t.Fatalf("parts give %q, want %q", b.String(), s)
		}
		out := tmpl.render(nil, &sampleValues)
		if tmpl.static() && string(out) != s {
			t.Fatalf("static template renders %q, want %q", out, s)
		}
	})
}
