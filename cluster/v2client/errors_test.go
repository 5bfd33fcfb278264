package v2client

import (
	"errors"
	"net/http"
	"testing"

	"github.com/cairnkv/cairn/store"
)

func TestResponseError(t *testing.T) {
	tests := []struct {
		code int
		body string
		want string
	}{
		{404, `{"message":"No such member: 2"}`, "No such member: 2"},
		{404, `{"errorCode":100,"message":"Key not found","cause":"/a","index":3}` + "\n", "Key not found (/a)"},
		{405, "Method Not Allowed\n", "HTTP 405 from https://e:1: Method Not Allowed"},
		{502, "", "HTTP 502 from https://e:1: Bad Gateway"},
		{500, `{"message":"Internal Server Error"}`, "Internal Server Error (HTTP 500 from https://e:1; its log says why)"},
		{500, "<html>\n<body>oops</body>", "HTTP 500 from https://e:1: <html>"},
	}
	for _, tt := range tests {
		err := responseError(&Response{StatusCode: tt.code, Body: []byte(tt.body), Endpoint: "https://e:1"})
		if err.Error() != tt.want {
			t.Errorf("%d %q: %q, want %q", tt.code, tt.body, err, tt.want)
		}
		if StatusCode(err) != tt.code {
			t.Errorf("%d %q: status %d", tt.code, tt.body, StatusCode(err))
		}
	}
	// A key error takes its index from X-Etcd-Index when the body has none.
	h := http.Header{"X-Etcd-Index": {"9"}}
	err := responseError(&Response{StatusCode: 400, Header: h, Body: []byte(`{"errorCode":401,"message":"m","cause":"c"}`)})
	var se *store.Error
	if !errors.As(err, &se) || se.Index != 9 || se.ErrorCode != 401 {
		t.Errorf("%#v", err)
	}
}

func TestKeysURI(t *testing.T) {
	if got := keysURI("/a b/%/?#", nil); got != "/v2/keys/a%20b/%25/%3F%23" {
		t.Errorf("keysURI = %q", got)
	}
}
