package store

import (
	"encoding/json"
	"sync/atomic"
)

// Stats are the /v2/stats/store counters. Write counters change on every
// replica as entries apply; read counters are local to the replica.
type Stats struct {
	GetSuccess              atomic.Uint64
	GetFail                 atomic.Uint64
	SetSuccess              atomic.Uint64
	SetFail                 atomic.Uint64
	DeleteSuccess           atomic.Uint64
	DeleteFail              atomic.Uint64
	UpdateSuccess           atomic.Uint64
	UpdateFail              atomic.Uint64
	CreateSuccess           atomic.Uint64
	CreateFail              atomic.Uint64
	CompareAndSwapSuccess   atomic.Uint64
	CompareAndSwapFail      atomic.Uint64
	CompareAndDeleteSuccess atomic.Uint64
	CompareAndDeleteFail    atomic.Uint64
	ExpireCount             atomic.Uint64
}

// StatsSnapshot is a copy of the counters in etcd's JSON field order.
type StatsSnapshot struct {
	GetSuccess              uint64 `json:"getsSuccess"`
	GetFail                 uint64 `json:"getsFail"`
	SetSuccess              uint64 `json:"setsSuccess"`
	SetFail                 uint64 `json:"setsFail"`
	DeleteSuccess           uint64 `json:"deleteSuccess"`
	DeleteFail              uint64 `json:"deleteFail"`
	UpdateSuccess           uint64 `json:"updateSuccess"`
	UpdateFail              uint64 `json:"updateFail"`
	CreateSuccess           uint64 `json:"createSuccess"`
	CreateFail              uint64 `json:"createFail"`
	CompareAndSwapSuccess   uint64 `json:"compareAndSwapSuccess"`
	CompareAndSwapFail      uint64 `json:"compareAndSwapFail"`
	CompareAndDeleteSuccess uint64 `json:"compareAndDeleteSuccess"`
	CompareAndDeleteFail    uint64 `json:"compareAndDeleteFail"`
	ExpireCount             uint64 `json:"expireCount"`
	Watchers                uint64 `json:"watchers"`
}

func (s *Stats) snapshot(watchers uint64) StatsSnapshot {
	return StatsSnapshot{
		GetSuccess: s.GetSuccess.Load(), GetFail: s.GetFail.Load(),
		SetSuccess: s.SetSuccess.Load(), SetFail: s.SetFail.Load(),
		DeleteSuccess: s.DeleteSuccess.Load(), DeleteFail: s.DeleteFail.Load(),
		UpdateSuccess: s.UpdateSuccess.Load(), UpdateFail: s.UpdateFail.Load(),
		CreateSuccess: s.CreateSuccess.Load(), CreateFail: s.CreateFail.Load(),
		CompareAndSwapSuccess: s.CompareAndSwapSuccess.Load(), CompareAndSwapFail: s.CompareAndSwapFail.Load(),
		CompareAndDeleteSuccess: s.CompareAndDeleteSuccess.Load(), CompareAndDeleteFail: s.CompareAndDeleteFail.Load(),
		ExpireCount: s.ExpireCount.Load(),
		Watchers:    watchers,
	}
}

func (s *Stats) restore(v StatsSnapshot) {
	s.GetSuccess.Store(v.GetSuccess)
	s.GetFail.Store(v.GetFail)
	s.SetSuccess.Store(v.SetSuccess)
	s.SetFail.Store(v.SetFail)
	s.DeleteSuccess.Store(v.DeleteSuccess)
	s.DeleteFail.Store(v.DeleteFail)
	s.UpdateSuccess.Store(v.UpdateSuccess)
	s.UpdateFail.Store(v.UpdateFail)
	s.CreateSuccess.Store(v.CreateSuccess)
	s.CreateFail.Store(v.CreateFail)
	s.CompareAndSwapSuccess.Store(v.CompareAndSwapSuccess)
	s.CompareAndSwapFail.Store(v.CompareAndSwapFail)
	s.CompareAndDeleteSuccess.Store(v.CompareAndDeleteSuccess)
	s.CompareAndDeleteFail.Store(v.CompareAndDeleteFail)
	s.ExpireCount.Store(v.ExpireCount)
}

// JSON is the /v2/stats/store body.
func (v StatsSnapshot) JSON() []byte {
	b, _ := json.Marshal(v) // plain integers: cannot fail
	return b
}
