package loadtest

import (
	"math"
	"math/rand/v2"
)

// poisson draws from the Poisson distribution with mean lambda: by
// multiplication of uniforms below 10, else by Hörmann's transformed
// rejection with squeeze (PTRS, 1993), as numpy does.
func poisson(r *rand.Rand, lambda float64) int64 {
	switch {
	case !(lambda > 0):
		return 0
	case lambda < 10:
		limit := math.Exp(-lambda)
		var x int64
		for prod := r.Float64(); prod > limit; prod *= r.Float64() {
			x++
		}
		return x
	}
	slam := math.Sqrt(lambda)
	loglam := math.Log(lambda)
	b := 0.931 + 2.53*slam
	a := -0.059 + 0.02483*b
	invalpha := 1.1239 + 1.1328/(b-3.4)
	vr := 0.9277 - 3.6224/(b-2)
	for {
		u := r.Float64() - 0.5
		v := r.Float64()
		us := 0.5 - math.Abs(u)
		k := math.Floor((2*a/us+b)*u + lambda + 0.43)
		if us >= 0.07 && v <= vr {
			return int64(k)
		}
		if k < 0 || (us < 0.013 && v > us) {
			continue
		}
		lg, _ := math.Lgamma(k + 1)
		if math.Log(v)+math.Log(invalpha)-math.Log(a/(us*us)+b) <= -lambda+k*loglam-lg {
			return int64(k)
		}
	}
}

// poissonTailBound returns an upper bound on P(N ≥ m) for N ~ Poisson(lambda),
// or 1 when lambda is not below m. Terms past m fall by at least the factor
// lambda/(m+1), so the tail is at most pmf(m)/(1 − lambda/(m+1)).
func poissonTailBound(lambda float64, m int64) float64 {
	if m <= 0 {
		return 1
	}
	if !(lambda > 0) {
		return 0
	}
	fm := float64(m)
	if lambda >= fm {
		return 1
	}
	lg, _ := math.Lgamma(fm + 1)
	pmf := math.Exp(fm*math.Log(lambda) - lambda - lg)
	return min(1, pmf/(1-lambda/(fm+1)))
}
