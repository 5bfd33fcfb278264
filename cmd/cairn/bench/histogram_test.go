package bench

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

func TestHistogramSmallValuesAreExact(t *testing.T) {
	var h Histogram
	for v := range 256 {
		h.Record(time.Duration(v))
	}
	for _, tt := range []struct {
		q    float64
		want time.Duration
	}{{0, 0}, {0.5, 127}, {0.9, 230}, {1, 255}} {
		if got := h.Quantile(tt.q); got != tt.want {
			t.Errorf("Quantile(%v) = %v, want %v", tt.q, got, tt.want)
		}
	}
	if h.Count() != 256 || h.Min() != 0 || h.Max() != 255 || h.Mean() != 127 {
		t.Errorf("count %d min %v max %v mean %v", h.Count(), h.Min(), h.Max(), h.Mean())
	}
}

// TestHistogramBuckets: every value falls in a bucket whose bounds hold it
// and whose width is under 1% of it; the buckets tile the values.
func TestHistogramBuckets(t *testing.T) {
	vals := []uint64{0, 1, 255, 256, 257, 511, 512, 1000, 123456789, 1<<40 + 12345, 1<<63 - 1, 1<<64 - 1}
	for range 10000 {
		vals = append(vals, rand.Uint64()>>rand.IntN(64))
	}
	for _, v := range vals {
		i := bucket(v)
		if i < 0 || i >= numBuckets {
			t.Fatalf("bucket(%d) = %d, out of [0, %d)", v, i, numBuckets)
		}
		lo := uint64(0)
		if i > 0 {
			lo = bucketHigh(i-1) + 1
		}
		hi := bucketHigh(i)
		if v < lo || v > hi {
			t.Fatalf("%d in bucket %d = [%d, %d]", v, i, lo, hi)
		}
		if float64(hi-lo) > float64(v)/128 {
			t.Fatalf("%d: bucket [%d, %d] is wider than 1/128 of it", v, lo, hi)
		}
	}
	if bucketHigh(numBuckets-1) != 1<<64-1 {
		t.Errorf("the last bucket ends at %d", bucketHigh(numBuckets-1))
	}
}

// TestHistogramQuantiles compares with the exact quantiles of a sample.
func TestHistogramQuantiles(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	var h Histogram
	var all []time.Duration
	for range 100000 {
		// A long tail: most around 1ms, some up to a second.
		d := time.Duration(r.ExpFloat64() * float64(time.Millisecond))
		if r.IntN(100) == 0 {
			d += time.Duration(r.Int64N(int64(time.Second)))
		}
		h.Record(d)
		all = append(all, d)
	}
	slices.Sort(all)
	for _, q := range []float64{0.5, 0.9, 0.99, 0.999, 1} {
		exact := all[max(int(q*float64(len(all)))-1, 0)]
		got := h.Quantile(q)
		if got < exact || float64(got-exact) > float64(exact)/128+1 {
			t.Errorf("Quantile(%v) = %v, exact %v", q, got, exact)
		}
	}
	if h.Max() != all[len(all)-1] || h.Min() != all[0] {
		t.Errorf("max %v min %v, want %v %v", h.Max(), h.Min(), all[len(all)-1], all[0])
	}
}

func TestHistogramMerge(t *testing.T) {
	var a, b, both Histogram
	for i := range 1000 {
		d := time.Duration(i) * time.Microsecond
		both.Record(d)
		if i%3 == 0 {
			a.Record(d)
		} else {
			b.Record(d)
		}
	}
	var m Histogram
	m.Merge(&a)
	m.Merge(&b)
	m.Merge(&Histogram{}) // empty: no change
	if m.Count() != both.Count() || m.Mean() != both.Mean() || m.Min() != both.Min() || m.Max() != both.Max() {
		t.Fatalf("merged %d/%v/%v/%v, want %d/%v/%v/%v", m.Count(), m.Mean(), m.Min(), m.Max(), both.Count(), both.Mean(), both.Min(), both.Max())
	}
	for _, q := range []float64{0.1, 0.5, 0.99} {
		if m.Quantile(q) != both.Quantile(q) {
			t.Errorf("Quantile(%v): merged %v, one %v", q, m.Quantile(q), both.Quantile(q))
		}
	}
}

func TestHistogramEmpty(t *testing.T) {
	var h Histogram
	if h.Count() != 0 || h.Quantile(0.5) != 0 || h.Max() != 0 || h.Min() != 0 || h.Mean() != 0 {
		t.Errorf("empty histogram: %d %v %v %v %v", h.Count(), h.Quantile(0.5), h.Max(), h.Min(), h.Mean())
	}
	h.Record(-time.Second)
	if h.Max() != 0 || h.Count() != 1 {
		t.Errorf("a negative duration: max %v count %d", h.Max(), h.Count())
	}
}

// BenchmarkHistogramRecord: recording is on every request's path.
func BenchmarkHistogramRecord(b *testing.B) {
	var h Histogram
	d := 1234567 * time.Nanosecond
	for b.Loop() {
		h.Record(d)
		d += 977
	}
}
