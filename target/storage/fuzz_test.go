package storage

import (
	"bytes"
	"context"
	"testing"
)

// FuzzImportSnapshot feeds arbitrary streams to the snapshot reader (a peer's output): it must
// refuse or import, never panic, and a refusal leaves the transaction to be rolled back.
func FuzzImportSnapshot(f *testing.F) {
	ctx := context.Background()
	src, err := Open(ctx, f.TempDir())
	if err != nil {
		f.Fatal(err)
	}
	defer src.Close()
	var buf bytes.Buffer
	if _, err := src.ExportSnapshot(ctx, &buf, "a", 1); err != nil {
		f.Fatal(err)
	}
	f.Add(buf.Bytes())
	f.Add([]byte(`{"header":{"version":1,"unit":"a","epoch":1,"last_seq":1,"chain":"c"}}` + "\n" + `{"a":[1,2,3,4]}` + "\n" + `{"end":1}`))
	f.Add([]byte(`{"header":{"version":1}}` + "\n" + `{"p":{"k":"x","f":1,"t":2,"m":3,"s":"committed","q":1,"e":1}}` + "\n" + `{"end":1}`))
	f.Add([]byte(`{"end":0}`))
	dst, err := Open(ctx, f.TempDir())
	if err != nil {
		f.Fatal(err)
	}
	defer dst.Close()
	f.Fuzz(func(t *testing.T, stream []byte) {
		tx, err := dst.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback()
		_, _, _ = tx.ImportSnapshot(ctx, bytes.NewReader(stream))
	})
}
