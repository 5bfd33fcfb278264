package store

import (
	"bytes"
	"encoding/json"
	"testing"
)

// encodeBody is the etcd 2.x response body: json.NewEncoder(w).Encode, so
// HTML-escaped and ending in a newline.
func encodeBody(t testing.TB, v any) string {
	t.Helper()
	var b bytes.Buffer
	if err := json.NewEncoder(&b).Encode(v); err != nil {
		t.Fatalf("encode %T: %v", v, err)
	}
	return b.String()
}

// TestEventJSONExamples reproduces the byte-exact bodies of reference §1.2.5
// (etcd's tests/integration/v2_http_kv_test.go). etcd's first user write is
// index 4, so each store first consumes indexes with unrelated writes.
func TestEventJSONExamples(t *testing.T) {
	warmUp := func(t *testing.T, s *Store, n int) {
		t.Helper()
		for i := range n {
			mustApply(t, s, t0, put("/warm/"+utoa(uint64(i)), "x"))
		}
	}
	tests := []struct {
		name   string
		warm   int
		pre    []Request
		req    Request
		want   string
		status int
	}{
		{name: "PUT /foo/bar value=bar", warm: 3,
			req:    put("/foo/bar", "bar"),
			want:   `{"action":"set","node":{"key":"/foo/bar","value":"bar","modifiedIndex":4,"createdIndex":4}}` + "\n",
			status: 201},
		{name: "PUT /foodir?dir=true", warm: 4,
			req:    putDir("/foodir"),
			want:   `{"action":"set","node":{"key":"/foodir","dir":true,"modifiedIndex":5,"createdIndex":5}}` + "\n",
			status: 201},
		{name: "PUT /fooempty value=", warm: 5,
			req:    put("/fooempty", ""),
			want:   `{"action":"set","node":{"key":"/fooempty","value":"","modifiedIndex":6,"createdIndex":6}}` + "\n",
			status: 201},
		{name: "PUT /cas/foo value=YYY prevIndex=10", warm: 4,
			pre:    []Request{put("/cas/foo", "XXX")},
			req:    Request{Method: MethodPut, Path: "/cas/foo", Value: "YYY", PrevIndex: 10},
			want:   `{"errorCode":101,"message":"Compare failed","cause":"[10 != 5]","index":5}` + "\n",
			status: 412},
		{name: "POST /foo value=XXX", warm: 3,
			req:    post("/foo", "XXX"),
			want:   `{"action":"create","node":{"key":"/foo/00000000000000000004","value":"XXX","modifiedIndex":4,"createdIndex":4}}` + "\n",
			status: 201},
		{name: "DELETE /emptydir", warm: 3,
			pre:    []Request{putDir("/emptydir")},
			req:    del("/emptydir"),
			want:   `{"errorCode":102,"message":"Not a file","cause":"/emptydir","index":4}` + "\n",
			status: 403},
		{name: "DELETE /foodir?dir=true", warm: 3,
			pre:    []Request{put("/foodir/x", "1")},
			req:    Request{Method: MethodDelete, Path: "/foodir", Dir: true},
			want:   `{"errorCode":108,"message":"Directory not empty","cause":"/foodir","index":4}` + "\n",
			status: 403},
		{name: "PUT set replacing an existing key is 200", warm: 3,
			pre:    []Request{put("/foo", "a")},
			req:    put("/foo", "b"),
			want:   `{"action":"set","node":{"key":"/foo","value":"b","modifiedIndex":5,"createdIndex":5},"prevNode":{"key":"/foo","value":"a","modifiedIndex":4,"createdIndex":4}}` + "\n",
			status: 200},
		{name: "HTML characters are escaped", warm: 3,
			req:    put("/<a&b>", "<v&w>"),
			want:   `{"action":"set","node":{"key":"/\u003ca\u0026b\u003e","value":"\u003cv\u0026w\u003e","modifiedIndex":4,"createdIndex":4}}` + "\n",
			status: 201},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := New(Config{})
			warmUp(t, s, tt.warm)
			mustApply(t, s, t0, tt.pre...)
			e, err := s.Apply(&tt.req, t0)
			var got string
			var status int
			if err != nil {
				se := asStoreError(t, err)
				got, status = string(se.MarshalBody()), se.StatusCode()
				if enc := encodeBody(t, se); enc != got {
					t.Errorf("MarshalBody %q differs from encoding/json %q", got, enc)
				}
			} else {
				got, status = encodeBody(t, e), 200
				if e.IsCreated() {
					status = 201
				}
			}
			if got != tt.want || status != tt.status {
				t.Errorf("[%d] %s\nwant [%d] %s", status, got, tt.status, tt.want)
			}
		})
	}
}

// TestEventJSONOmitsInternalFields: EtcdIndex and Refresh never reach the
// body (§1.2.5: etcd's responses drop "refresh").
func TestEventJSONOmitsInternalFields(t *testing.T) {
	s := New(Config{})
	mustApply(t, s, t0, withTTL(put("/k", "v"), 10))
	e := mustApply(t, s, t0, withTTL(Request{Method: MethodPut, Path: "/k", PrevExist: PrevExistTrue, Refresh: true}, 10))
	want := `{"action":"update","node":{"key":"/k","value":"v","expiration":"2024-05-06T05:08:19Z","ttl":10,"modifiedIndex":2,"createdIndex":1},` +
		`"prevNode":{"key":"/k","value":"v","expiration":"2024-05-06T05:08:19Z","ttl":10,"modifiedIndex":1,"createdIndex":1}}`
	if got := marshal(t, e); got != want {
		t.Errorf("refresh event:\n got %s\nwant %s", got, want)
	}
}

// TestErrorContract: the code table's HTTP statuses (§1.2.7, §2.2), messages
// and the error's string form.
func TestErrorContract(t *testing.T) {
	tests := []struct {
		code   int
		status int
		msg    string
	}{
		{EcodeKeyNotFound, 404, "Key not found"},
		{EcodeTestFailed, 412, "Compare failed"},
		{EcodeNotFile, 403, "Not a file"},
		{EcodeNotDir, 400, "Not a directory"},
		{EcodeNodeExist, 412, "Key already exists"},
		{EcodeRootROnly, 400, "Root is read only"},
		{EcodeDirNotEmpty, 403, "Directory not empty"},
		{EcodeUnauthorized, 401, "The request requires user authentication"},
		{EcodePrevValueRequired, 400, "PrevValue is Required in POST form"},
		{EcodeTTLNaN, 400, "The given TTL in POST form is not a number"},
		{EcodeIndexNaN, 400, "The given index in POST form is not a number"},
		{EcodeInvalidField, 400, "Invalid field"},
		{EcodeInvalidForm, 400, "Invalid POST form"},
		{EcodeRefreshValue, 400, "Value provided on refresh"},
		{EcodeRefreshTTLRequired, 400, "A TTL must be provided on refresh"},
		{EcodeRaftInternal, 500, "Raft Internal Error"},
		{EcodeLeaderElect, 500, "During Leader Election"},
		{EcodeWatcherCleared, 400, "watcher is cleared due to etcd recovery"},
		{EcodeEventIndexCleared, 400, "The event in requested index is outdated and cleared"},
	}
	for _, tt := range tests {
		e := NewError(tt.code, "", 7)
		if e.StatusCode() != tt.status || e.Message != tt.msg {
			t.Errorf("code %d: status %d message %q, want %d %q", tt.code, e.StatusCode(), e.Message, tt.status, tt.msg)
		}
	}
	// Without a cause the member is omitted; index is always present.
	if got, want := string(NewError(EcodeNotFile, "", 0).MarshalBody()), `{"errorCode":102,"message":"Not a file","index":0}`+"\n"; got != want {
		t.Errorf("body %q, want %q", got, want)
	}
	if got, want := NewError(EcodeKeyNotFound, "/a", 3).Error(), "Key not found (/a)"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	if got, want := NewError(EcodeKeyNotFound, "", 3).Error(), "Key not found"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}

// TestStoreErrorsAreNeverTypedNil: a successful operation returns a nil error
// interface, not a nil *Error (STYLE rule 4).
func TestStoreErrorsAreNeverTypedNil(t *testing.T) {
	s := New(Config{})
	ops := []opFunc{
		ap(put("/a", "1")), ap(post("/q", "1")), ap(Request{Method: MethodPut, Path: "/a", Value: "2", PrevExist: PrevExistTrue}),
		ap(Request{Method: MethodPut, Path: "/a", Value: "3", PrevValue: "2"}), ap(Request{Method: MethodDelete, Path: "/a", PrevValue: "3"}),
		ap(Request{Method: MethodPut, Path: "/b", PrevExist: PrevExistFalse}), ap(del("/b")), get("/", true, true),
	}
	for i, op := range ops {
		if _, err := op(s, t0); err != nil {
			t.Fatalf("op %d: error %#v (%T), want a nil interface", i, err, err)
		}
	}
	if _, err := s.Watch("/x", false, false, 0); err != nil {
		t.Fatalf("Watch: error %#v, want a nil interface", err)
	}
}
