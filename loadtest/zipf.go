package loadtest

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
)

// Zipf is the traffic mix over ranked accounts: rank k (0-based) sends a share
// proportional to 1/(k+1)^s of all messages. Sampling uses Walker's alias
// method (Vose's construction): O(1) per sample after an O(n) table build.
//
// A Zipf is immutable once built and safe for concurrent use; each goroutine
// brings its own *rand.Rand.
type Zipf struct {
	s     float64
	norm  float64   // Σ_{k=1..n} k^-s
	prob  []float64 // alias method: probability of keeping column i
	alias []int32   // alias method: the other outcome of column i
}

// maxZipfN bounds the number of ranks (alias entries are int32).
const maxZipfN = math.MaxInt32

// NewZipf builds the distribution over n ranks with exponent s ≥ 0.
func NewZipf(n int, s float64) (*Zipf, error) {
	if n < 1 || n > maxZipfN {
		return nil, fmt.Errorf("zipf: %d ranks out of range [1,%d]", n, maxZipfN)
	}
	if s < 0 || math.IsNaN(s) || math.IsInf(s, 0) {
		return nil, fmt.Errorf("zipf: exponent %v must be finite and ≥ 0", s)
	}
	z := &Zipf{s: s, prob: make([]float64, n), alias: make([]int32, n)}
	// Vose: scaled[i] = p_i·n; columns below 1 borrow from columns above.
	scaled := z.prob
	for i := n - 1; i >= 0; i-- { // smallest terms first, for an accurate sum
		scaled[i] = math.Pow(float64(i+1), -s)
		z.norm += scaled[i]
	}
	f := float64(n) / z.norm
	for i := range scaled {
		scaled[i] *= f
	}
	small := make([]int32, 0, n/2+1)
	large := make([]int32, 0, n/2+1)
	for i, p := range scaled {
		if p < 1 {
			small = append(small, int32(i))
		} else {
			large = append(large, int32(i))
		}
	}
	for len(small) > 0 && len(large) > 0 {
		l := small[len(small)-1]
		small = small[:len(small)-1]
		g := large[len(large)-1]
		large = large[:len(large)-1]
		// scaled[l] stays as column l's keep probability.
		z.alias[l] = g
		scaled[g] = scaled[g] + scaled[l] - 1
		if scaled[g] < 1 {
			small = append(small, g)
		} else {
			large = append(large, g)
		}
	}
	// Leftovers are 1 up to rounding.
	for _, i := range large {
		scaled[i], z.alias[i] = 1, i
	}
	for _, i := range small {
		scaled[i], z.alias[i] = 1, i
	}
	return z, nil
}

// ErrTopShare is returned when no Zipf exponent gives the requested top share.
var ErrTopShare = errors.New("zipf: top share must be in [1/accounts, 1), or exactly 1 for one account")

// ZipfForTopShare builds the Zipf mix over n accounts whose largest account
// sends exactly topShare of all traffic (up to floating-point rounding).
func ZipfForTopShare(n int, topShare float64) (*Zipf, error) {
	s, err := ZipfExponent(n, topShare)
	if err != nil {
		return nil, err
	}
	return NewZipf(n, s)
}

// ZipfExponent solves for the exponent s at which rank 0 of n carries
// topShare: 1/H(n,s) = topShare, where H(n,s) = Σ_{k=1..n} k^-s falls
// strictly as s grows. It bisects on a fast, accurate H (exact head, Euler–
// Maclaurin tail).
func ZipfExponent(n int, topShare float64) (float64, error) {
	if n < 1 || n > maxZipfN {
		return 0, fmt.Errorf("zipf: %d ranks out of range [1,%d]", n, maxZipfN)
	}
	if n == 1 {
		if topShare != 1 {
			return 0, ErrTopShare
		}
		return 0, nil
	}
	if !(topShare >= 1/float64(n)) || topShare >= 1 {
		return 0, ErrTopShare
	}
	target := 1 / topShare
	lo, hi := 0.0, 1.0
	for harmonic(n, hi) > target {
		hi *= 2
		if hi > 1e6 {
			return 0, ErrTopShare
		}
	}
	for range 200 {
		mid := (lo + hi) / 2
		if mid == lo || mid == hi {
			break
		}
		if harmonic(n, mid) > target {
			lo = mid
		} else {
			hi = mid
		}
	}
	return (lo + hi) / 2, nil
}

// harmonic returns H(n,s) = Σ_{k=1..n} k^-s: the first terms exactly, the
// rest by Euler–Maclaurin (integral, end corrections and the first
// derivative term), whose error at a 4096-term head is far below float64
// resolution of the result.
func harmonic(n int, s float64) float64 {
	const head = 4096
	m := min(n, head)
	var h float64
	for k := m; k >= 1; k-- {
		h += math.Pow(float64(k), -s)
	}
	if n == m {
		return h
	}
	// Σ_{k=m+1..n} f(k) = ∫_m^n f + (f(n) − f(m))/2 + (f'(n) − f'(m))/12 − …
	a, b := float64(m), float64(n)
	f := func(x float64) float64 { return math.Pow(x, -s) }
	df := func(x float64) float64 { return -s * math.Pow(x, -s-1) }
	var integral float64
	if math.Abs(s-1) < 1e-12 {
		integral = math.Log(b / a)
	} else {
		integral = (math.Pow(b, 1-s) - math.Pow(a, 1-s)) / (1 - s)
	}
	return h + integral + (f(b)-f(a))/2 + (df(b)-df(a))/12
}

// N returns the number of ranks.
func (z *Zipf) N() int { return len(z.prob) }

// Exponent returns s.
func (z *Zipf) Exponent() float64 { return z.s }

// Share returns rank k's share of all traffic.
func (z *Zipf) Share(k int) float64 {
	if k < 0 || k >= len(z.prob) {
		return 0
	}
	return math.Pow(float64(k+1), -z.s) / z.norm
}

// Sample draws a rank.
func (z *Zipf) Sample(r *rand.Rand) int {
	i := r.IntN(len(z.prob))
	if r.Float64() < z.prob[i] {
		return i
	}
	return int(z.alias[i])
}
