package events

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// decodeStd is Decode through encoding/json alone: the reference of the fast path.
func decodeStd(b []byte) (Event, error) {
	var e Event
	if err := json.Unmarshal(b, &e); err != nil {
		return e, ErrBadEvent
	}
	if e.ID == "" || e.Unit == "" || e.Key == "" {
		return e, ErrBadEvent
	}
	return e, nil
}

var codecSeeds = []Event{
	{ID: "a-1", Unit: "a", Seq: 1, Key: "k-1", FromUID: 10, ToUID: 20, AmountMinor: 500},
	{ID: "b-9223372036854775807", Unit: "b", Seq: 9223372036854775807, Key: "K", FromUID: -1, ToUID: 0, AmountMinor: -9223372036854775808},
	{ID: "c-2", Unit: "c", Seq: 2, Key: `quote " and \ slash`, FromUID: 1, ToUID: 2, AmountMinor: 3},
	{ID: "d-3", Unit: "d", Seq: 3, Key: "html <&> and ünïcode \u2028", FromUID: 1, ToUID: 2, AmountMinor: 3},
	{ID: "e-4", Unit: "e", Seq: 4, Key: "ctl \x01 and invalid \xff utf-8", FromUID: 1, ToUID: 2, AmountMinor: 3},
	{},
}

// TestCodec: Encode writes what json.Marshal writes, and Decode reads it back, on the fast path
// for plain strings and through encoding/json for the others.
func TestCodec(t *testing.T) {
	for _, e := range codecSeeds {
		got, err := Encode(e)
		if err != nil {
			t.Fatal(err)
		}
		want, _ := json.Marshal(e)
		if string(got) != string(want) {
			t.Errorf("Encode(%+v) = %s, want %s", e, got, want)
		}
		dec, err := Decode(got)
		ref, refErr := decodeStd(got)
		if diff := cmp.Diff(ref, dec); diff != "" || (err == nil) != (refErr == nil) {
			t.Errorf("Decode(%s) = %+v, %v; want %+v, %v", got, dec, err, ref, refErr)
		}
	}
	if _, ok := decodeFast([]byte(`{"id":"a-1","unit":"a","seq":1,"key":"k","from_uid":1,"to_uid":2,"amount_minor":3}`)); !ok {
		t.Error("the layout Encode writes is not on the fast path")
	}
}

// FuzzDecode: whatever the bytes, Decode answers what encoding/json answers.
func FuzzDecode(f *testing.F) {
	for _, e := range codecSeeds {
		b, _ := json.Marshal(e)
		f.Add(b)
	}
	f.Add([]byte(`{"id":"a-1","unit":"a","seq":01,"key":"k","from_uid":1,"to_uid":2,"amount_minor":3}`))
	f.Add([]byte(`{"id":"a-1","unit":"a","seq":1e3,"key":"k","from_uid":1,"to_uid":2,"amount_minor":3}`))
	f.Add([]byte(`{"id":"a-1","unit":"a","seq":-0,"key":"k","from_uid":1,"to_uid":2,"amount_minor":99999999999999999999}`))
	f.Add([]byte(`{"id":"a-1","unit":"a","seq":1,"key":"k","from_uid":1,"to_uid":2,"amount_minor":3} `))
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := Decode(b)
		want, wantErr := decodeStd(b)
		if (err == nil) != (wantErr == nil) {
			t.Fatalf("Decode(%q) error %v, encoding/json's %v", b, err, wantErr)
		}
		if err != nil && !errors.Is(err, ErrBadEvent) {
			t.Fatalf("Decode(%q) error %v, not ErrBadEvent", b, err)
		}
		if err == nil {
			if diff := cmp.Diff(want, got); diff != "" {
				t.Fatalf("Decode(%q) (-encoding/json +got):\n%s", b, diff)
			}
		}
	})
}

// FuzzEncode: Encode writes what json.Marshal writes, for any strings and numbers.
func FuzzEncode(f *testing.F) {
	for _, e := range codecSeeds {
		f.Add(e.ID, e.Unit, e.Key, e.Seq, e.FromUID, e.ToUID, e.AmountMinor)
	}
	f.Fuzz(func(t *testing.T, id, unit, key string, seq, from, to, amount int64) {
		e := Event{ID: id, Unit: unit, Seq: seq, Key: key, FromUID: from, ToUID: to, AmountMinor: amount}
		got, err := Encode(e)
		if err != nil {
			t.Fatal(err)
		}
		if want, _ := json.Marshal(e); string(got) != string(want) {
			t.Fatalf("Encode(%+v) = %s, want %s", e, got, want)
		}
	})
}

// BenchmarkDecode compares Decode with encoding/json alone (the decoder before the fast path).
func BenchmarkDecode(b *testing.B) {
	msg, _ := Encode(codecSeeds[0])
	for _, c := range []struct {
		name   string
		decode func([]byte) (Event, error)
	}{{"Decode", Decode}, {"encoding-json", decodeStd}} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := c.decode(msg); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
