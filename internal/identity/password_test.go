package identity

import (
	"context"
	"errors"
	"runtime"
	"strings"
	"sync"
	"testing"
)

// cheap keeps tests fast; the parameters are stored with each hash.
var cheap = Params{Memory: 8 * 1024, Time: 1, Threads: 1}

func TestPasswordPolicy(t *testing.T) {
	for _, tc := range []struct {
		pw       string
		personal []string
		want     string
	}{
		{"short", nil, PolicyTooShort},
		{"ñandú12", nil, PolicyTooShort}, // 7 characters, 9 bytes
		{strings.Repeat("x", 257), nil, PolicyTooLong},
		{"password", nil, PolicyCommon},
		{"PassWord", nil, PolicyCommon},
		{"baseball", nil, PolicyCommon},
		{"iloveyou2", nil, PolicyCommon},
		{"maria1968!", []string{"maria.ortega@example.com", "Ortega"}, PolicyPersonal},
		{"xxOrtegaxx", []string{"maria@example.com", "ortega"}, PolicyPersonal},
		{"\xff\xfe bad bytes", nil, PolicyNotUnicode},
		{"correct horse battery staple", nil, ""},
		{strings.Repeat("ü", 64), nil, ""},
		{"ñandú123", nil, ""},
		{strings.Repeat("long passphrase ", 16), nil, ""}, // 256 characters
	} {
		err := CheckPassword(tc.pw, tc.personal...)
		var pe *PolicyError
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("CheckPassword(%.20q) = %v, want accepted", tc.pw, err)
		case tc.want != "" && (!errors.As(err, &pe) || pe.Code != tc.want):
			t.Errorf("CheckPassword(%.20q) = %v, want %s", tc.pw, err, tc.want)
		}
		if err != nil && len(tc.pw) > 8 && strings.Contains(err.Error(), tc.pw) {
			t.Errorf("the policy error repeats the password: %v", err)
		}
	}
}

func TestHashAndVerify(t *testing.T) {
	h, err := HashPassword("Tr0ub4dor&3 plus more", cheap)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(h, "$argon2id$v=19$m=8192,t=1,p=1$") {
		t.Errorf("hash = %s", h)
	}
	h2, _ := HashPassword("Tr0ub4dor&3 plus more", cheap)
	if h == h2 {
		t.Error("two hashes of one password are equal: the salt is not random")
	}
	for _, tc := range []struct {
		pw     string
		ok     bool
		rehash bool
		want   Params
	}{
		{"Tr0ub4dor&3 plus more", true, false, cheap},
		{"tr0ub4dor&3 plus more", false, false, cheap}, // no case folding
		{"Tr0ub4dor&3 plus mor", false, false, cheap},  // no truncation
		{"Tr0ub4dor&3 plus more", true, true, DefaultParams},
	} {
		ok, rehash, err := VerifyPassword(h, tc.pw, tc.want)
		if err != nil || ok != tc.ok || rehash != tc.rehash {
			t.Errorf("VerifyPassword(%q) = %v %v %v, want %v %v", tc.pw, ok, rehash, err, tc.ok, tc.rehash)
		}
	}
	// The same password typed composed or decomposed is the same password.
	hc, _ := HashPassword("caf\u00e9 au lait", cheap)
	if ok, _, _ := VerifyPassword(hc, "cafe\u0301 au lait", cheap); !ok {
		t.Error("NFKC-equivalent passwords differ")
	}
	// A password longer than 72 bytes counts in full (no bcrypt-style cut).
	long := strings.Repeat("a", 100)
	hl, _ := HashPassword(long, cheap)
	if ok, _, _ := VerifyPassword(hl, long[:72], cheap); ok {
		t.Error("a long password was truncated")
	}
	for _, bad := range []string{"", "$2a$10$abc", "$argon2id$v=19$m=1,t=1,p=1$AAAA$AAAA", "$argon2i$v=19$m=8192,t=1,p=1$c2FsdHNhbHQ$a2V5a2V5a2V5a2V5a2V5a2V5"} {
		if _, _, err := VerifyPassword(bad, "x", cheap); err == nil {
			t.Errorf("VerifyPassword accepted hash %q", bad)
		}
	}
}

func TestHasherRefusesBeyondCapacity(t *testing.T) {
	h := NewHasher(cheap, 2)
	ctx := context.Background()
	// Hold both slots: the next request waits in the queue (one place for
	// two slots) and runs as soon as a slot frees.
	h.slots <- struct{}{}
	h.slots <- struct{}{}
	if h.Busy() {
		t.Fatal("Busy with a place left in the queue")
	}
	queued := make(chan error, 1)
	go func() { _, _, err := h.Verify(ctx, "", "whatever1"); queued <- err }()
	for len(h.queue) == 0 {
		runtime.Gosched()
	}
	if !h.Busy() {
		t.Fatal("not Busy with every slot and the queue taken")
	}
	// Slots and queue full: refused at once.
	if _, _, err := h.Verify(ctx, "", "whatever1"); !errors.Is(err, ErrBusy) {
		t.Fatalf("Verify beyond capacity: %v, want ErrBusy", err)
	}
	if _, err := h.Hash(ctx, "whatever1"); !errors.Is(err, ErrBusy) {
		t.Fatalf("Hash beyond capacity: %v, want ErrBusy", err)
	}
	// A waiter whose request is given up leaves the queue.
	cctx, cancel := context.WithCancel(ctx)
	<-h.queue // make room for one more waiter
	gaveUp := make(chan error, 1)
	go func() { _, err := h.Hash(cctx, "whatever1"); gaveUp <- err }()
	for len(h.queue) == 0 {
		runtime.Gosched()
	}
	cancel()
	if err := <-gaveUp; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled waiter: %v", err)
	}
	h.queue <- struct{}{} // put the first waiter's place back
	h.release()
	if err := <-queued; err != nil {
		t.Fatalf("the queued request, once a slot freed: %v", err)
	}
	h.release()
	var wg sync.WaitGroup
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if ok, _, err := h.Verify(ctx, "", "whatever1"); ok || err != nil {
				t.Errorf("unknown account: %v %v", ok, err)
			}
		}()
	}
	wg.Wait()
	if len(h.slots) != 0 {
		t.Errorf("%d slots still held", len(h.slots))
	}
}

// BenchmarkHashPassword is the cost of one argon2id hash at the
// parameters carefront uses (bench/README.md reads the sign-in ceiling
// off it).
func BenchmarkHashPassword(b *testing.B) {
	for b.Loop() {
		if _, err := HashPassword("correct horse battery staple", DefaultParams); err != nil {
			b.Fatal(err)
		}
	}
}
