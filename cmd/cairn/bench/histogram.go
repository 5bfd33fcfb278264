package bench

import (
	"math"
	"math/bits"
	"time"
)

// subBits is the number of significant bits a bucket keeps: values below
// 2^subBits are exact, larger ones fall in buckets 1/2^(subBits-1) of
// their magnitude wide (under 1% relative error, as HdrHistogram with two
// significant digits).
const subBits = 8

const (
	half       = 1 << (subBits - 1)
	numBuckets = (64-subBits+1)*half + half
)

// Histogram counts durations in log-spaced buckets: recording is a few
// instructions and no allocation, merging is adding counts. The zero value
// is ready to use; a Histogram is not safe for concurrent use (give each
// client its own and Merge them).
type Histogram struct {
	counts   []uint64 // allocated on first Record
	n        uint64
	sum      uint64 // nanoseconds
	min, max uint64
}

// bucket is the index of the bucket that holds v.
func bucket(v uint64) int {
	if v < 1<<subBits {
		return int(v)
	}
	shift := bits.Len64(v) - subBits
	return shift*half + int(v>>shift)
}

// bucketHigh is the largest value of bucket i.
func bucketHigh(i int) uint64 {
	if i < 1<<subBits {
		return uint64(i)
	}
	shift := i/half - 1
	top := uint64(i - shift*half)
	return (top+1)<<shift - 1
}

// Record adds one duration; a negative one counts as zero.
func (h *Histogram) Record(d time.Duration) {
	v := uint64(max(d, 0))
	if h.counts == nil {
		h.counts = make([]uint64, numBuckets)
		h.min = math.MaxUint64
	}
	h.counts[bucket(v)]++
	h.n++
	h.sum += v
	h.min = min(h.min, v)
	h.max = max(h.max, v)
}

// Merge adds the counts of o to h.
func (h *Histogram) Merge(o *Histogram) {
	if o.n == 0 {
		return
	}
	if h.counts == nil {
		h.counts = make([]uint64, numBuckets)
		h.min = math.MaxUint64
	}
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.n += o.n
	h.sum += o.sum
	h.min = min(h.min, o.min)
	h.max = max(h.max, o.max)
}

// Count is the number of durations recorded.
func (h *Histogram) Count() uint64 { return h.n }

// Max is the largest duration recorded (exact).
func (h *Histogram) Max() time.Duration { return time.Duration(h.max) }

// Min is the smallest duration recorded (exact; 0 when empty).
func (h *Histogram) Min() time.Duration {
	if h.n == 0 {
		return 0
	}
	return time.Duration(h.min)
}

// Mean is the exact mean.
func (h *Histogram) Mean() time.Duration {
	if h.n == 0 {
		return 0
	}
	return time.Duration(h.sum / h.n)
}

// Quantile is the smallest recorded value v such that a fraction q of the
// values are at most v, as the upper bound of its bucket (never above
// Max): Quantile(0.99) is the p99. q is clamped to [0, 1].
func (h *Histogram) Quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	q = min(max(q, 0), 1)
	rank := uint64(math.Ceil(q * float64(h.n)))
	rank = max(rank, 1)
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			return time.Duration(min(max(bucketHigh(i), h.min), h.max))
		}
	}
	return time.Duration(h.max)
}
