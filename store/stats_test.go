package store

import "testing"

// TestStatsJSON: /v2/stats/store has etcd's field order (reference §1.4) and
// counts every success and failure of every operation, reads included.
func TestStatsJSON(t *testing.T) {
	s := New(Config{})
	if got, want := string(s.Stats().JSON()),
		`{"getsSuccess":0,"getsFail":0,"setsSuccess":0,"setsFail":0,"deleteSuccess":0,"deleteFail":0,`+
			`"updateSuccess":0,"updateFail":0,"createSuccess":0,"createFail":0,"compareAndSwapSuccess":0,`+
			`"compareAndSwapFail":0,"compareAndDeleteSuccess":0,"compareAndDeleteFail":0,"expireCount":0,"watchers":0}`; got != want {
		t.Fatalf("empty stats:\n got %s\nwant %s", got, want)
	}

	ops := []Request{
		put("/a", "1"), put("/b", "1"), withTTL(put("/t", "1"), 1), put("/a/x", "1"), // sets 3, setsFail 1 (104)
		del("/a"), del("/nope"), del("/nope2"), // delete 1, deleteFail 2
		{Method: MethodPut, Path: "/b", Value: "2", PrevExist: PrevExistTrue}, // update 1
		{Method: MethodPut, Path: "/zz", PrevExist: PrevExistTrue},            // updateFail 1
		{Method: MethodPut, Path: "/c", PrevExist: PrevExistFalse},            // create 1
		post("/q", "1"), // create 2
		{Method: MethodPut, Path: "/c", PrevExist: PrevExistFalse},  // createFail 1
		{Method: MethodPut, Path: "/b", Value: "3", PrevValue: "2"}, // cas 1
		{Method: MethodPut, Path: "/b", Value: "3", PrevValue: "2"}, // casFail 1
		{Method: MethodPut, Path: "/b", Value: "3", PrevIndex: 99},  // casFail 2
		{Method: MethodDelete, Path: "/c", PrevValue: "x"},          // cadFail 1
		{Method: MethodDelete, Path: "/b", PrevValue: "3"},          // cad 1
	}
	for i := range ops {
		s.Apply(&ops[i], t0) // failures are part of the scenario
	}
	s.Get("/", true, false, t0)
	s.Get("/q", false, false, t0)
	s.Get("/nope", false, false, t0)
	s.DeleteExpiredKeys(at(sec))
	w := mustWatch(t, s, "/w", false, false, 0)
	defer w.Remove()

	want := `{"getsSuccess":2,"getsFail":1,"setsSuccess":3,"setsFail":1,"deleteSuccess":1,"deleteFail":2,` +
		`"updateSuccess":1,"updateFail":1,"createSuccess":2,"createFail":1,"compareAndSwapSuccess":1,` +
		`"compareAndSwapFail":2,"compareAndDeleteSuccess":1,"compareAndDeleteFail":1,"expireCount":1,"watchers":1}`
	if got := string(s.Stats().JSON()); got != want {
		t.Errorf("stats:\n got %s\nwant %s", got, want)
	}
	// Index: 3 sets + 1 delete + 1 update + 2 creates + 1 cas + 1 cad + 1 expiry.
	if s.Index() != 10 {
		t.Errorf("index %d, want 10", s.Index())
	}
}
