package loadtest

import (
	"encoding/binary"
	"errors"
	"math"
	"math/rand/v2"
	"testing"

	postflight "github.com/postflight/postflight"
)

func TestZipfForTopShare(t *testing.T) {
	tests := []struct {
		n     int
		share float64
	}{
		{1_000_000, 0.10},
		{1_000_000, 0.05},
		{1_000_000, 0.40},
		{10_000, 0.10},
		{100, 0.01}, // uniform
		{2, 0.9},
		{5000, 0.999},
	}
	for _, tt := range tests {
		z, err := ZipfForTopShare(tt.n, tt.share)
		if err != nil {
			t.Fatalf("n=%d share=%v: %v", tt.n, tt.share, err)
		}
		if got := z.Share(0); math.Abs(got-tt.share) > 1e-9*tt.share {
			t.Errorf("n=%d: top share = %.12f, want %v (s=%v)", tt.n, got, tt.share, z.Exponent())
		}
		if tt.n <= 10_000 {
			var sum float64
			for k := range tt.n {
				sum += z.Share(k)
			}
			if math.Abs(sum-1) > 1e-9 {
				t.Errorf("n=%d share=%v: shares sum to %v", tt.n, tt.share, sum)
			}
		}
	}
}

func TestZipfExponentErrors(t *testing.T) {
	for _, tt := range []struct {
		n     int
		share float64
	}{{10, 1}, {10, 0.05}, {10, 0}, {10, math.NaN()}, {1, 0.5}, {0, 0.5}} {
		if _, err := ZipfExponent(tt.n, tt.share); err == nil {
			t.Errorf("ZipfExponent(%d, %v) = nil error", tt.n, tt.share)
		} else if tt.n > 0 && !errors.Is(err, ErrTopShare) {
			t.Errorf("ZipfExponent(%d, %v) = %v, want ErrTopShare", tt.n, tt.share, err)
		}
	}
	if s, err := ZipfExponent(1, 1); err != nil || s != 0 {
		t.Errorf("one account: s=%v err=%v", s, err)
	}
}

func TestHarmonicMatchesExactSum(t *testing.T) {
	for _, s := range []float64{0, 0.5, 0.999, 1, 1.06, 1.5, 3} {
		n := 200_000
		var exact float64
		for k := n; k >= 1; k-- {
			exact += math.Pow(float64(k), -s)
		}
		if got := harmonic(n, s); math.Abs(got-exact) > 1e-10*exact {
			t.Errorf("H(%d, %v) = %.15g, exact %.15g", n, s, got, exact)
		}
	}
}

// TestZipfSampleShare checks that sampling reproduces the shares: the top
// account's frequency within 5 standard deviations, and the frequencies of
// the first ranks.
func TestZipfSampleShare(t *testing.T) {
	z, err := ZipfForTopShare(1_000_000, 0.10)
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(1, 2))
	const samples = 2_000_000
	counts := make([]int, 5)
	tail := 0
	for range samples {
		k := z.Sample(r)
		if k < 0 || k >= z.N() {
			t.Fatalf("sample %d out of range", k)
		}
		if k < len(counts) {
			counts[k]++
		} else if k >= 100_000 {
			tail++
		}
	}
	for k, c := range counts {
		p := z.Share(k)
		sd := math.Sqrt(samples * p * (1 - p))
		if math.Abs(float64(c)-samples*p) > 5*sd {
			t.Errorf("rank %d: %d samples, want %.0f ± %.0f", k, c, samples*p, 5*sd)
		}
	}
	var pTail float64
	for k := 100_000; k < z.N(); k++ {
		pTail += z.Share(k)
	}
	if sd := math.Sqrt(samples * pTail * (1 - pTail)); math.Abs(float64(tail)-samples*pTail) > 5*sd {
		t.Errorf("ranks ≥ 100000: %d samples, want %.0f ± %.0f", tail, samples*pTail, 5*sd)
	}
}

func TestSIDs(t *testing.T) {
	if a, b := AccountSID(0), AccountSID(0); a != b || !postflight.ValidAccountSID(a) {
		t.Errorf("AccountSID(0) = %q, %q: want stable and valid", a, b)
	}
	if AccountSID(1) == AccountSID(2) {
		t.Error("accounts 1 and 2 share a SID")
	}
	r := rand.New(rand.NewPCG(1, 1))
	if s := newMessageSID(r); !postflight.ValidMessageSID(s) {
		t.Errorf("newMessageSID = %q: invalid", s)
	}
}

func TestPoisson(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for _, lambda := range []float64{0.01, 0.5, 5, 9.9, 10, 50, 500, 5000} {
		const n = 200_000
		var sum, sum2 float64
		for range n {
			x := float64(poisson(r, lambda))
			if x < 0 {
				t.Fatalf("λ=%v: negative draw", lambda)
			}
			sum += x
			sum2 += x * x
		}
		mean := sum / n
		variance := sum2/n - mean*mean
		if se := math.Sqrt(lambda / n); math.Abs(mean-lambda) > 5*se {
			t.Errorf("λ=%v: mean %v, want %v ± %v", lambda, mean, lambda, 5*se)
		}
		if math.Abs(variance-lambda) > 0.03*lambda+0.001 {
			t.Errorf("λ=%v: variance %v, want ≈ %v", lambda, variance, lambda)
		}
	}
	if poisson(r, 0) != 0 || poisson(r, math.NaN()) != 0 {
		t.Error("λ ≤ 0 must draw 0")
	}
}

func TestPoissonTailBound(t *testing.T) {
	// Exact P(N ≥ m) for λ=3, m=8 is 0.01190…
	exact := 1.0
	p := math.Exp(-3.0)
	for k := 0; k < 8; k++ {
		exact -= p
		p *= 3 / float64(k+1)
	}
	if got := poissonTailBound(3, 8); got < exact || got > 1.5*exact {
		t.Errorf("bound %v, exact %v: want a tight upper bound", got, exact)
	}
	if poissonTailBound(10, 5) != 1 || poissonTailBound(0, 5) != 0 || poissonTailBound(1, 0) != 1 {
		t.Error("edge cases")
	}
}

// newMessageSID returns a random message SID, "SM" and 32 lowercase hex digits.
func newMessageSID(r *rand.Rand) string {
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], r.Uint64())
	binary.BigEndian.PutUint64(b[8:], r.Uint64())
	return sid("SM", b)
}
