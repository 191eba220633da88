package filelock

import (
	"path/filepath"
	"testing"
)

func TestSharedExcludesTryLock(t *testing.T) {
	p := filepath.Join(t.TempDir(), "x.use")
	r1, err := Shared(p, "test")
	if err != nil {
		t.Fatal(err)
	}
	r2, err := Shared(p, "test") // shared locks share
	if err != nil {
		t.Fatal(err)
	}
	if _, ok, err := TryLock(p, "test"); ok || err != nil {
		t.Fatalf("TryLock under shared holders: ok=%v err=%v", ok, err)
	}
	r1()
	if _, ok, err := TryLock(p, "test"); ok || err != nil {
		t.Fatalf("TryLock under one shared holder: ok=%v err=%v", ok, err)
	}
	r2()
	release, ok, err := TryLock(p, "test")
	if !ok || err != nil {
		t.Fatalf("TryLock when free: ok=%v err=%v", ok, err)
	}
	if _, ok, _ := TryLock(p, "test"); ok {
		t.Fatal("two exclusive holders")
	}
	release()
	unlock, err := Lock(p, "test")
	if err != nil {
		t.Fatal(err)
	}
	unlock()
}
