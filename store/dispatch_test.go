package store

import (
	"maps"
	"testing"
)

// TestApplyDispatch covers every row of reference §1.2.3: which store
// operation a PUT, POST or DELETE becomes, first match wins, with the action,
// the 201-vs-200 distinction (IsCreated) and the stats counter it moves.
func TestApplyDispatch(t *testing.T) {
	// Fixture: /file = "v" @1, /dir @2, /dir/child = "c" @3.
	fixture := []Request{put("/file", "v"), putDir("/dir"), put("/dir/child", "c")}
	const base = 3

	tests := []struct {
		name    string
		req     Request
		action  string // "" when an error is expected
		created bool   // Event.IsCreated: HTTP 201
		code    int    // expected error code, 0 on success
		stat    string // the counter that moves by one
		value   *string
	}{
		// PUT
		{name: "PUT prevExist=true → Update",
			req:    Request{Method: MethodPut, Path: "/file", Value: "w", PrevExist: PrevExistTrue},
			action: ActionUpdate, stat: "updateSuccess", value: ptr("w")},
		{name: "PUT prevExist=true on missing → Update fails 100",
			req:  Request{Method: MethodPut, Path: "/nope", Value: "w", PrevExist: PrevExistTrue},
			code: EcodeKeyNotFound, stat: "updateFail"},
		{name: "PUT prevExist=true prevIndex → CompareAndSwap",
			req:    Request{Method: MethodPut, Path: "/file", Value: "w", PrevExist: PrevExistTrue, PrevIndex: 1},
			action: ActionCompareAndSwap, stat: "compareAndSwapSuccess", value: ptr("w")},
		{name: "PUT prevExist=true prevValue → CompareAndSwap",
			req:    Request{Method: MethodPut, Path: "/file", Value: "w", PrevExist: PrevExistTrue, PrevValue: "v"},
			action: ActionCompareAndSwap, stat: "compareAndSwapSuccess", value: ptr("w")},
		{name: "PUT prevExist=true prevValue mismatch → CompareAndSwap fails 101",
			req:  Request{Method: MethodPut, Path: "/file", Value: "w", PrevExist: PrevExistTrue, PrevValue: "x"},
			code: EcodeTestFailed, stat: "compareAndSwapFail"},
		{name: "PUT prevExist=false → Create (201)",
			req:    Request{Method: MethodPut, Path: "/new", Value: "n", PrevExist: PrevExistFalse},
			action: ActionCreate, created: true, stat: "createSuccess", value: ptr("n")},
		{name: "PUT prevExist=false ignores prevValue and prevIndex",
			req:    Request{Method: MethodPut, Path: "/new", Value: "n", PrevExist: PrevExistFalse, PrevValue: "zz", PrevIndex: 99},
			action: ActionCreate, created: true, stat: "createSuccess", value: ptr("n")},
		{name: "PUT prevExist=false on existing → 105 even when prevValue matches",
			req:  Request{Method: MethodPut, Path: "/file", Value: "n", PrevExist: PrevExistFalse, PrevValue: "v"},
			code: EcodeNodeExist, stat: "createFail"},
		{name: "PUT prevIndex → CompareAndSwap",
			req:    Request{Method: MethodPut, Path: "/file", Value: "w", PrevIndex: 1},
			action: ActionCompareAndSwap, stat: "compareAndSwapSuccess", value: ptr("w")},
		{name: "PUT prevValue → CompareAndSwap",
			req:    Request{Method: MethodPut, Path: "/file", Value: "w", PrevValue: "v"},
			action: ActionCompareAndSwap, stat: "compareAndSwapSuccess", value: ptr("w")},
		{name: "PUT prevValue on missing → CompareAndSwap fails 100",
			req:  Request{Method: MethodPut, Path: "/nope", Value: "w", PrevValue: "v"},
			code: EcodeKeyNotFound, stat: "compareAndSwapFail"},
		{name: "PUT otherwise on missing → Set (201)",
			req:    put("/new", "n"),
			action: ActionSet, created: true, stat: "setsSuccess", value: ptr("n")},
		{name: "PUT otherwise on existing → Set (200)",
			req:    put("/file", "w"),
			action: ActionSet, stat: "setsSuccess", value: ptr("w")},
		{name: "PUT otherwise on dir → Set fails 102",
			req:  put("/dir", "w"),
			code: EcodeNotFile, stat: "setsFail"},
		{name: "PUT dir=true on file → Set replaces it with a dir (#1161)",
			req:    putDir("/file"),
			action: ActionSet, stat: "setsSuccess"},
		{name: "PUT dir=true prevExist=true on file → Update to empty file (GH518)",
			req:    Request{Method: MethodPut, Path: "/file", Dir: true, PrevExist: PrevExistTrue},
			action: ActionUpdate, stat: "updateSuccess", value: ptr("")},
		{name: "PUT refresh prevExist=true → Update keeping the value",
			req:    withTTL(Request{Method: MethodPut, Path: "/file", PrevExist: PrevExistTrue, Refresh: true}, 10),
			action: ActionUpdate, stat: "updateSuccess", value: ptr("v")},
		{name: "PUT refresh → Set keeping the value",
			req:    withTTL(Request{Method: MethodPut, Path: "/file", Refresh: true}, 10),
			action: ActionSet, stat: "setsSuccess", value: ptr("v")},
		{name: "PUT refresh prevValue → CompareAndSwap keeping the value",
			req:    withTTL(Request{Method: MethodPut, Path: "/file", PrevValue: "v", Refresh: true}, 10),
			action: ActionCompareAndSwap, stat: "compareAndSwapSuccess", value: ptr("v")},
		{name: "PUT refresh on missing → Set fails 100",
			req:  withTTL(Request{Method: MethodPut, Path: "/nope", Refresh: true}, 10),
			code: EcodeKeyNotFound, stat: "setsFail"},

		// POST
		{name: "POST → Create unique (201)",
			req:    post("/dir", "q"),
			action: ActionCreate, created: true, stat: "createSuccess", value: ptr("q")},
		{name: "POST ignores prevExist, prevValue and prevIndex",
			req:    Request{Method: MethodPost, Path: "/dir", Value: "q", PrevExist: PrevExistTrue, PrevValue: "zz", PrevIndex: 99},
			action: ActionCreate, created: true, stat: "createSuccess", value: ptr("q")},

		// DELETE
		{name: "DELETE prevIndex → CompareAndDelete",
			req:    Request{Method: MethodDelete, Path: "/file", PrevIndex: 1},
			action: ActionCompareAndDelete, stat: "compareAndDeleteSuccess"},
		{name: "DELETE prevValue → CompareAndDelete",
			req:    Request{Method: MethodDelete, Path: "/file", PrevValue: "v"},
			action: ActionCompareAndDelete, stat: "compareAndDeleteSuccess"},
		{name: "DELETE prevIndex mismatch → CompareAndDelete fails 101",
			req:  Request{Method: MethodDelete, Path: "/file", PrevIndex: 2},
			code: EcodeTestFailed, stat: "compareAndDeleteFail"},
		{name: "DELETE otherwise → Delete",
			req:    del("/file"),
			action: ActionDelete, stat: "deleteSuccess"},
		{name: "DELETE dir without dir=true → Delete fails 102",
			req:  del("/dir"),
			code: EcodeNotFile, stat: "deleteFail"},
		{name: "DELETE recursive → Delete of a subtree",
			req:    Request{Method: MethodDelete, Path: "/dir", Recursive: true},
			action: ActionDelete, stat: "deleteSuccess"},

		{name: "unknown method → 209",
			req:  Request{Method: "PATCH", Path: "/file", Value: "w"},
			code: EcodeInvalidField},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := New(Config{})
			mustApply(t, s, t0, fixture...)
			before := statsMap(t, s)
			req := tt.req
			e, err := s.Apply(&req, at(sec))

			wantDelta := map[string]uint64{}
			if tt.stat != "" {
				wantDelta[tt.stat] = 1
			}
			if got := statsDelta(before, statsMap(t, s)); !maps.Equal(got, wantDelta) {
				t.Errorf("stats delta = %v, want %v", got, wantDelta)
			}
			if tt.code != 0 {
				if e != nil {
					t.Errorf("event %s returned with an error", marshal(t, e))
				}
				if err == nil {
					t.Fatalf("no error, want %d", tt.code)
				}
				if se := asStoreError(t, err); se.ErrorCode != tt.code || se.Index != base {
					t.Fatalf("error %d index %d, want %d index %d", se.ErrorCode, se.Index, tt.code, base)
				}
				if s.Index() != base {
					t.Fatalf("index moved to %d on failure", s.Index())
				}
				return
			}
			if err != nil {
				t.Fatalf("Apply: %v", err)
			}
			if e.Action != tt.action || e.IsCreated() != tt.created {
				t.Errorf("action %q created %v, want %q created %v", e.Action, e.IsCreated(), tt.action, tt.created)
			}
			if e.EtcdIndex != base+1 || e.Index() != base+1 || s.Index() != base+1 {
				t.Errorf("EtcdIndex %d, node index %d, store index %d, want all %d",
					e.EtcdIndex, e.Index(), s.Index(), base+1)
			}
			if tt.value != nil && (e.Node.Value == nil || *e.Node.Value != *tt.value) {
				t.Errorf("node %s, want value %q", marshal(t, e.Node), *tt.value)
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }
