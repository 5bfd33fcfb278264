package e2e

import (
	"testing"
)

// Status codes, named for the table below.
const (
	s200 = 200
	s201 = 201
	s301 = 301
	s400 = 400
	s403 = 403
	s404 = 404
	s405 = 405
	s412 = 412
)

// In the scripts, {i+N} is the store index N writes after the script's
// start and {k+N} the same index as a 20-digit in-order key name. Comments
// "(i+N)" give the index a successful write consumes.
var scripts = []script{
	{name: "set", steps: []step{
		put("/k", "", "value=one", s201),                // i+1
		get("/k", "", s200),                             //
		get("/k", "quorum=true", s200),                  // same answer through raft
		get("/k", "consistent=true", s200),              // 0.4 flag, ignored
		put("/k", "", "value=two", s200),                // i+2: replace, prevNode
		put("/k", "", "value=three&ttl=100", s200),      // i+3
		get("/k", "", s200),                             // ttl, expiration
		put("/k", "", "value=four", s200),               // i+4: TTL dropped, new createdIndex
		put("/k", "", "value=", s200),                   // i+5: empty value is legal
		get("/k", "", s200),                             //
		put("/k", "", "", s200),                         // i+6: missing value is ""
		put("/a/b/c", "", "value=deep", s201),           // i+7: parents created
		get("/a", "recursive=true", s200),               //
		get("/a/b", "", s200),                           //
		put("/k/child", "", "value=x", s400).ecode(104), // k is a file
		put("/a", "", "value=x", s403).ecode(102),       // a is a dir
		get("/k/child", "", s400).ecode(104),            //
		get("/missing/deeper", "", s404).ecode(100),     // cause: first missing component
		put("/k/", "", "value=slash", s200),             // i+8: trailing slash is dropped
		get("/k", "", s200),                             //
		put("/n", "", "value=1&value=2", s201),          // i+9: the first value wins
		get("/n", "", s200),
	}},
	{name: "create", steps: []step{
		put("/c", "prevExist=false", "value=v", s201),                        // i+1
		put("/c", "prevExist=false", "value=w", s412).ecode(105),             //
		put("/c", "prevExist=false&prevValue=v", "value=w", s412).ecode(105), // prevValue ignored
		put("/c", "prevExist=false&prevIndex={i+1}", "value=w", s412).ecode(105),
		put("/d", "prevExist=false&dir=true", "", s201),          // i+2
		put("/d", "prevExist=false", "value=x", s412).ecode(105), //
		put("/e/f", "prevExist=false", "value=x", s201),          // i+3
		get("", "recursive=true&sorted=true", s200),
	}},
	{name: "update", steps: []step{
		put("/u", "prevExist=true", "value=x", s404).ecode(100),
		put("/u", "", "value=a&ttl=100", s201),                    // i+1
		put("/u", "prevExist=true", "value=b", s200),              // i+2: TTL removed
		get("/u", "", s200),                                       //
		put("/u", "prevExist=true", "", s200),                     // i+3: value ""
		put("/u", "prevExist=true", "value=c&ttl=50", s200),       // i+4
		get("/u", "", s200),                                       //
		put("/u", "prevExist=true", "value=d&ttl=", s200),         // i+5: ttl= clears
		get("/u", "", s200),                                       //
		put("/dir", "dir=true", "", s201),                         // i+6
		put("/dir", "prevExist=true", "value=x", s403).ecode(102), //
		put("/u", "prevExist=true&dir=true", "", s200),            // i+7: GH518, stays a file with ""
		get("/u", "", s200),
	}},
	{name: "cas", steps: []step{
		put("/x", "", "value=one", s201),                                          // i+1
		put("/x", "prevValue=one", "value=two", s200),                             // i+2
		put("/x", "prevValue=one", "value=three", s412).ecode(101),                // [one != two]
		put("/x", "prevIndex={i+2}", "value=three", s200),                         // i+3
		put("/x", "prevIndex={i+1}", "value=four", s412).ecode(101),               // [i+1 != i+3]
		put("/x", "prevValue=three&prevIndex={i+3}", "value=five", s200),          // i+4
		put("/x", "prevValue=bad&prevIndex={i+1}", "value=six", s412).ecode(101),  // both
		put("/x", "prevValue=five&prevIndex={i+1}", "value=six", s412).ecode(101), // index only
		put("/x", "prevValue=bad&prevIndex={i+4}", "value=six", s412).ecode(101),  // value only
		put("/x", "prevIndex=0&prevValue=five", "value=six&ttl=100", s200),        // i+5: prevIndex=0 = not given
		put("/x", "prevValue=six", "value=seven", s200),                           // i+6: TTL removed
		put("/x", "prevExist=true&prevValue=seven", "value=eight", s200),          // i+7
		put("/missing", "prevValue=a", "value=b", s404).ecode(100),
		put("/x", "prevValue=", "value=b", s400).ecode(201),
		put("/x", "prevIndex=abc", "value=b", s400).ecode(203),
		put("/x", "prevIndex=-1", "value=b", s400).ecode(203),
		put("/d", "dir=true", "", s201),                            // i+8
		put("/d", "prevValue=a", "value=b", s403).ecode(102),       // CAS on a dir
		put("/d", "prevIndex={i+8}&dir=true", "", s403).ecode(102), //
		get("/x", "", s200),
	}},
	{name: "inorder", steps: []step{
		post("/q", "", "value=a", s201),         // i+1 = k+1
		post("/q", "", "value=b", s201),         // k+2
		post("/q", "dir=true", "", s201),        // k+3: in-order dir
		post("/q/{k+3}", "", "value=c", s201),   // k+4
		post("/q", "", "", s201),                // k+5: value ""
		post("/q", "", "value=t&ttl=100", s201), // k+6
		get("/q", "recursive=true&sorted=true", s200),
		get("/q/{k+1}", "", s200),
		put("/f", "", "value=file", s201),          // i+7
		post("/f", "", "value=x", s400).ecode(104), // a file cannot hold children
		del("/q/{k+1}", "", s200),                  // i+8
		get("/q", "sorted=true", s200),
	}},
	{name: "delete", steps: []step{
		put("/f", "", "value=x", s201),              // i+1
		del("/f", "", s200),                         // i+2
		del("/f", "", s404).ecode(100),              //
		put("/d/a", "", "value=x", s201),            // i+3
		del("/d", "", s403).ecode(102),              // a dir needs dir=true
		del("/d", "dir=true", s403).ecode(108),      // not empty
		del("/d/a/b", "", s400).ecode(104),          // file in the path
		del("/d", "recursive=true", s200),           // i+4
		get("/d", "", s404).ecode(100),              //
		del("/d/a", "", s404).ecode(100),            // cause: /delete/d
		put("/e", "dir=true", "", s201),             // i+5
		del("/e", "dir=true", s200),                 // i+6
		put("/g", "", "value=x", s201),              // i+7
		del("/g", "dir=true", s200),                 // i+8: dir=true allowed on a file
		put("/h", "", "value=x", s201),              // i+9
		del("/h", "recursive=true", s200),           // i+10
		put("/r/s/t", "", "value=x", s201),          // i+11
		del("/r", "recursive=true&dir=false", s200), // i+12: recursive implies dir
		del("/d", "recursive=x", s400).ecode(209),
		del("/d", "dir=x", s400).ecode(209),
		get("", "recursive=true", s200),
	}},
	{name: "cad", steps: []step{
		put("/k", "", "value=one", s201),                            // i+1
		del("/k", "prevValue=two", s412).ecode(101),                 // [two != one]
		del("/k", "prevIndex={i+5}", s412).ecode(101),               // [i+5 != i+1]
		del("/k", "prevValue=two&prevIndex={i+5}", s412).ecode(101), // both
		del("/k", "prevValue=", s400).ecode(201),
		del("/k", "prevIndex=x", s400).ecode(203),
		del("/missing", "prevValue=x", s404).ecode(100),
		put("/d", "dir=true", "", s201),           // i+2
		del("/d", "prevValue=x", s403).ecode(102), // CAD on a dir
		del("/d", "prevIndex={i+2}&dir=true", s403).ecode(102),
		del("/k", "prevIndex={i+1}", s200), // i+3
		put("/k", "", "value=two", s201),   // i+4
		del("/k", "prevValue=two", s200),   // i+5
		get("/k", "", s404).ecode(100),
	}},
	{name: "params", steps: []step{
		put("/k", "ttl=abc", "value=x", s400).ecode(202),
		put("/k", "", "value=x&ttl=-1", s400).ecode(202),
		put("/k", "", "value=x&ttl=1.5", s400).ecode(202),
		post("/k", "ttl=x", "", s400).ecode(202),
		put("/k", "dir=maybe", "", s400).ecode(209),
		put("/k", "prevExist=maybe", "value=x", s400).ecode(209),
		get("/k", "recursive=maybe", s400).ecode(209),
		get("/k", "sorted=x", s400).ecode(209),
		get("/k", "wait=x", s400).ecode(209),
		get("/k", "quorum=x", s400).ecode(209),
		get("/k", "stream=x", s400).ecode(209),
		get("/k", "wait=true&waitIndex=abc", s400).ecode(203),
		put("/k", "wait=true", "value=x", s400).ecode(209), // wait only with GET
		post("/k", "wait=true", "value=x", s400).ecode(209),
		del("/k", "wait=true", s400).ecode(209),
		head("/k", "wait=true", s400),
		put("/k", "noValueOnSuccess=x", "value=x", s400).ecode(209),
		put("/k", "refresh=x", "value=x", s400).ecode(209),
		get("", "recursive=true", s404).ecode(100), // nothing was stored
		put("/d", "dir=1", "", s201),               // i+1: ParseBool spellings
		put("/d/x", "", "value=v", s201),           // i+2
		get("/d", "recursive=T&sorted=TRUE", s200), //
		del("/d", "recursive=True", s200),          // i+3
	}},
	{name: "form", steps: []step{
		put("/k", "value=query", "value=body", s201),                 // i+1: the body wins
		get("/k", "", s200),                                          //
		put("/k", "value=query", "", s200),                           // i+2: query alone counts
		get("/k", "", s200),                                          //
		put("/k", "ttl=abc", "ttl=100&value=c", s200),                // i+3: body ttl wins
		put("/k", "prevExist=false", "prevExist=true&value=d", s200), // i+4: update from the body
		put("/k", "", "value=a%26b%3Dc%2Bd", s200),                   // i+5: escaped form value
		get("/k", "", s200),                                          //
		post("/q", "", "value=x&value=y", s201),                      // i+6
		put("/d", "dir=true", "", s201),                              // i+7
		put("/d/c", "", "value=x", s201),                             // i+8
		req("DELETE", "/d", "", "recursive=true", s403).ecode(102),   // a DELETE body is not read
		get("/d", "", s200),
	}},
	{name: "hidden", steps: []step{
		put("/h/_hidden", "", "value=x", s201),   // i+1
		put("/h/visible", "", "value=y", s201),   // i+2
		put("/h/_hdir/x", "", "value=z", s201),   // i+3
		put("/h/sub/_deep", "", "value=w", s201), // i+4
		put("/h/sub/ok", "", "value=v", s201),    // i+5
		get("/h", "sorted=true", s200),
		get("/h", "recursive=true&sorted=true", s200),
		get("/h/_hidden", "", s200),
		get("/h/_hdir", "recursive=true", s200),
		del("/h/_hidden", "", s200), // i+6
		get("/h/_hidden", "", s404).ecode(100),
	}},
	{name: "sorted", steps: []step{
		put("/s/b", "", "value=b", s201),
		put("/s/a/z", "", "value=az", s201),
		put("/s/a/y", "", "value=ay", s201),
		put("/s/c", "dir=true", "", s201),
		put("/s/a/x/deep", "", "value=axd", s201),
		put("/s/B", "", "value=B", s201),
		put("/s/a0", "", "value=a0", s201),
		get("/s", "recursive=true&sorted=true", s200),
		get("/s", "sorted=true", s200),
		get("/s/a", "recursive=true&sorted=true", s200),
		get("", "recursive=true&sorted=true", s200),
	}},
	{name: "emptydir", steps: []step{
		put("/e", "dir=true", "", s201),            // i+1
		get("/e", "", s200),                        // no "nodes"
		get("/e", "recursive=true", s200),          //
		put("/p/q", "dir=true", "", s201),          // i+2
		get("/p", "recursive=true", s200),          //
		get("/p", "", s200),                        //
		put("/e", "dir=true", "", s403).ecode(102), // set on an existing dir
		put("/e", "", "value=x", s403).ecode(102),  //
		put("/f", "", "value=x", s201),             // i+3
		put("/f", "dir=true", "", s200),            // i+4: #1161, the file becomes a dir
		get("/f", "", s200),
	}},
	{name: "escape", steps: []step{
		put("/html", "", "value=%3Cb%3E%26%3C%2Fb%3E", s201), // <b>&</b> as \u003cb\u003e\u0026...
		get("/html", "", s200),
		put("/a%3Cb%3E", "", "value=x", s201), // a key with < >
		get("/a%3Cb%3E", "", s200),
		put("/sp%20ace", "", "value=x", s201),
		put("/enc%2Fslash", "", "value=x", s201), // %2F separates segments
		get("/enc/slash", "", s200),
		put("/uni", "", "value=h%C3%A9llo%E2%98%83", s201),
		put("/quote", "", "value=a%22b%5Cc%0Ad", s201), // a"b\c<newline>d
		get("", "recursive=true&sorted=true", s200),
	}},
	{name: "head", steps: []step{
		head("/k", "", s404),
		put("/k", "", "value=x", s201),
		head("/k", "", s200),
		put("/d", "dir=true", "", s201),
		head("/d", "recursive=true", s200),
		head("/k/x", "", s400),
		get("/k", "", s200),
	}},
	{name: "method", steps: []step{
		req("PATCH", "/k", "", "value=x", s405),
		req("TRACE", "", "", "", s405),
		get("//a", "x=1", s301),  // non-clean paths redirect
		get("/a/../b", "", s301), //
		put("//a", "", "value=x", s301).cairnFix(redirectFix, 307, "").withHead("Location: /v2/keys/method/a"),
		get("/a", "", s404).ecode(100), // the redirected PUT did nothing
	}},
	{name: "novalue", steps: []step{
		put("/k", "noValueOnSuccess=true", "value=x", s201),                          // i+1 set
		put("/k", "noValueOnSuccess=true", "value=y", s200),                          // i+2 set
		put("/k", "noValueOnSuccess=true&prevExist=true", "value=z", s200),           // i+3 update
		put("/k", "noValueOnSuccess=true&prevValue=z", "value=w", s200),              // i+4 CAS
		put("/c", "noValueOnSuccess=true&prevExist=false", "value=w", s201),          // i+5 create
		post("/q", "noValueOnSuccess=true", "value=a", s201),                         // i+6
		put("/k", "noValueOnSuccess=true&prevValue=bad", "value=v", s412).ecode(101), // errors are whole
		put("/k", "", "value=v&noValueOnSuccess=true", s200),                         // i+7, from the body
		del("/k", "noValueOnSuccess=true", s200),                                     // i+8: delete keeps its body
		get("/c", "noValueOnSuccess=true", s200),                                     //
		put("/c", "noValueOnSuccess=false", "value=x", s200),                         // i+9
		get("", "recursive=true&sorted=true", s200),
	}},
	{name: "refresh", steps: []step{
		put("/k", "", "value=v&ttl=100", s201),                     // i+1
		put("/k", "prevExist=true&refresh=true&ttl=200", "", s200), // i+2: update, value kept
		get("/k", "", s200),                                        //
		put("/k", "refresh=true&ttl=300", "", s200),                // i+3: set, re-created
		get("/k", "", s200),                                        //
		put("/k", "refresh=true&ttl=300", "value=x", s400).ecode(211),
		put("/k", "refresh=true", "", s400).ecode(212),
		put("/k", "prevExist=true&refresh=true&ttl=", "", s400).ecode(212),
		put("/k", "prevExist=true&refresh=true", "ttl=150", s200), // i+4: ttl from the body
		put("/missing", "refresh=true&ttl=10", "", s404).ecode(100),
		put("/missing", "prevExist=true&refresh=true&ttl=10", "", s404).ecode(100),
		get("/k", "wait=true&waitIndex={i+2}", 0).background("w"),  // refreshes are skipped
		put("/k", "", "value=w", s200),                             // i+5
		joined("w", s200),                                          // the set at i+5
		put("/k", "prevValue=w&refresh=true&ttl=100", "", s200),    // i+6: CAS refresh
		get("/k", "wait=true", 0).background("live"),               // live watchers skip refreshes too
		put("/k", "prevExist=true&refresh=true&ttl=100", "", s200), // i+7
		put("/k", "prevExist=true", "value=x", s200),               // i+8
		joined("live", s200),
		get("", "recursive=true&sorted=true", s200),
	}},
	{name: "dirttl", steps: []step{
		put("/d", "dir=true", "", s201),                        // i+1
		put("/d/child", "", "value=x", s201),                   // i+2
		put("/d", "dir=true&prevExist=true&ttl=100", "", s200), // i+3: update, dir:true
		get("/d", "", s200).cairnFix(dirIndexBug, s200,
			`{"action":"get","node":{"key":"/dirttl/d","dir":true,"expiration":"E","ttl":T,"nodes":[{"key":"/dirttl/d/child","value":"x","modifiedIndex":i+2,"createdIndex":i+2}],"modifiedIndex":i+3,"createdIndex":i+1}}`+"\n"),
		put("/d", "dir=true&prevExist=true&ttl=", "", s200).cairnFix(dirIndexBug, s200, // i+4: permanent again
			`{"action":"update","node":{"key":"/dirttl/d","dir":true,"modifiedIndex":i+4,"createdIndex":i+1},"prevNode":{"key":"/dirttl/d","dir":true,"expiration":"E","ttl":T,"modifiedIndex":i+3,"createdIndex":i+1}}`+"\n"),
		get("/d", "", s200).cairnFix(dirIndexBug, s200,
			`{"action":"get","node":{"key":"/dirttl/d","dir":true,"nodes":[{"key":"/dirttl/d/child","value":"x","modifiedIndex":i+2,"createdIndex":i+2}],"modifiedIndex":i+4,"createdIndex":i+1}}`+"\n"),
		put("/d", "dir=true&prevExist=true", "ttl=abc", s400).ecode(202),
		put("/d", "dir=true&ttl=100", "", s403).ecode(102), // set on a dir
		put("/missing", "dir=true&prevExist=true&ttl=100", "", s404).ecode(100),
		put("/d", "prevExist=true&ttl=100", "", s200).cairnFix(dirIndexBug, s200, // i+5: dir=true is not needed
			`{"action":"update","node":{"key":"/dirttl/d","dir":true,"expiration":"E","ttl":T,"modifiedIndex":i+5,"createdIndex":i+1},"prevNode":{"key":"/dirttl/d","dir":true,"modifiedIndex":i+4,"createdIndex":i+1}}`+"\n"),
		put("/d", "dir=true&prevExist=true&refresh=true&ttl=200", "", s200).cairnFix(dirIndexBug, s200, // i+6
			`{"action":"update","node":{"key":"/dirttl/d","dir":true,"expiration":"E","ttl":T,"modifiedIndex":i+6,"createdIndex":i+1},"prevNode":{"key":"/dirttl/d","dir":true,"expiration":"E","ttl":T,"modifiedIndex":i+5,"createdIndex":i+1}}`+"\n"),
		get("/d", "", s200).cairnFix(dirIndexBug, s200,
			`{"action":"get","node":{"key":"/dirttl/d","dir":true,"expiration":"E","ttl":T,"nodes":[{"key":"/dirttl/d/child","value":"x","modifiedIndex":i+2,"createdIndex":i+2}],"modifiedIndex":i+6,"createdIndex":i+1}}`+"\n"),
		get("/d/child", "", s200),
	}},
	{name: "watchhist", steps: []step{
		put("/a", "", "value=1", s201),                              // i+1
		put("/b", "", "value=1", s201),                              // i+2
		put("/a", "", "value=2", s200),                              // i+3
		del("/b", "", s200),                                         // i+4
		put("/c/d", "", "value=x", s201),                            // i+5
		get("/a", "wait=true&waitIndex={i+1}", s200),                // i+1
		get("/a", "wait=true&waitIndex={i+2}", s200),                // the first match at or after: i+3
		get("/b", "wait=true&waitIndex={i+3}", s200),                // the delete at i+4
		get("", "wait=true&recursive=true&waitIndex={i+2}", s200),   // /b at i+2
		get("/c", "wait=true&recursive=true&waitIndex={i+1}", s200), // /c/d at i+5
		get("/a", "wait=true&waitIndex={i+1}&recursive=false", s200),
		get("/c", "wait=true&waitIndex={i+1}", 0).background("dir"), // non-recursive: children do not fire
		put("/c/e", "", "value=y", s201),                            // i+6
		del("/c", "recursive=true", s200),                           // i+7
		joined("dir", s200),                                         // the delete of /c at i+7
		get("/zzz", "wait=true&waitIndex={i+1}", 0).background("missing"),
		put("/zzz", "", "value=z", s201), // i+8
		joined("missing", s200),
	}},
	{name: "watchancestor", steps: []step{
		put("/d/k", "", "value=1", s201),                   // i+1
		put("/d/sub/k", "", "value=2", s201),               // i+2
		del("/d", "recursive=true", s200),                  // i+3
		get("/d/k", "wait=true&waitIndex={i+2}", s200),     // the dir delete, node.key /d
		get("/d/sub/k", "wait=true&waitIndex={i+3}", s200), //
		get("/d/sub/k", "wait=true&waitIndex={i+2}", s200), // its own set comes first
		put("/e/k", "", "value=1", s201),                   // i+4
		get("/e/k", "wait=true", 0).background("live"),
		del("/e", "recursive=true", s200), // i+5
		joined("live", s200),
		put("/f/g/h", "", "value=1", s201), // i+6
		get("/f/g/h", "wait=true", 0).background("deep"),
		get("/f/g", "wait=true&recursive=true", 0).background("deeprec"),
		del("/f", "recursive=true", s200), // i+7
		joined("deep", s200),
		joined("deeprec", s200),
		put("/ab", "", "value=1", s201),   // i+8
		put("/a/x", "", "value=1", s201),  // i+9
		del("/a", "recursive=true", s200), // i+10
		get("/ab", "wait=true&waitIndex={i+10}", 0).background("sibling"),
		put("/ab", "", "value=2", s200), // i+11
		joined("sibling", s200).cairnFix(siblingBug, s200,
			`{"action":"set","node":{"key":"/watchancestor/ab","value":"2","modifiedIndex":i+11,"createdIndex":i+11},"prevNode":{"key":"/watchancestor/ab","value":"1","modifiedIndex":i+8,"createdIndex":i+8}}`+"\n"),
	}},
	{name: "watchlive", steps: []step{
		put("/k", "", "value=1", s201), // i+1
		get("/k", "wait=true", 0).background("w1"),
		get("", "wait=true&recursive=true", 0).background("w2"),
		get("/k", "wait=true&waitIndex={i+2}", 0).background("w3"),
		get("/k", "wait=true&waitIndex=0", 0).background("w0"),
		put("/k", "", "value=2", s200), // i+2
		joined("w1", s200),
		joined("w2", s200),
		joined("w3", s200),
		joined("w0", s200),
		get("/other", "wait=true", 0).background("w4"),
		put("/k", "", "value=3", s200),     // i+3, not /other
		put("/other", "", "value=o", s201), // i+4
		joined("w4", s200),
		get("/k", "wait=true", 0).background("w5"),
		del("/k", "prevValue=3", s200), // i+5: compareAndDelete
		joined("w5", s200),
		get("/c", "wait=true", 0).background("w6"),
		put("/c", "prevExist=false", "value=c", s201), // i+6: create
		joined("w6", s200),
		get("/c", "wait=true", 0).background("w7"),
		put("/c", "prevValue=c", "value=d&ttl=100", s200), // i+7: compareAndSwap
		joined("w7", s200),
		get("", "wait=true&recursive=true", 0).background("w8"),
		put("/_hidden", "", "value=h", s201), // i+8: not seen by a recursive watch
		put("/seen", "", "value=s", s201),    // i+9
		joined("w8", s200),
		get("", "wait=true&recursive=true&waitIndex={i+8}", s200).cairnFix(hiddenHistoryFix, s200, // etcd's history scan does not skip hidden keys
			`{"action":"set","node":{"key":"/watchlive/seen","value":"s","modifiedIndex":i+9,"createdIndex":i+9}}`+"\n"),
	}},
	{name: "expire", steps: []step{
		put("/t", "", "value=x&ttl=1", s201), // i+1
		// Registered before the ttl=0 write, whose expiry could otherwise
		// move the watch's X-Etcd-Index (its start index).
		get("/t", "wait=true", 0).background("live"),
		// ttl=2, not 1: with both at 1 s, /t and /d expire in the same
		// sweep or in two, depending on where the 500 ms sweep falls, and
		// the 404 of the /t poll carries i+6 or i+7 (seen between two etcds).
		put("/d", "dir=true&ttl=2", "", s201), // i+2
		put("/d/c", "", "value=y", s201),      // i+3
		put("/z", "", "value=z&ttl=0", s201),  // i+4: expires at the next sweep
		get("/z", "", s404).poll(s404),        // the expiries: /z at i+5,
		get("/t", "", s404).poll(s404),        // /t at i+6,
		get("/d/c", "", s404).poll(s404),      // /d at i+7
		joined("live", s200),
		get("/t", "wait=true&waitIndex={i+2}", s200),   // expire event from history
		get("/d/c", "wait=true&waitIndex={i+4}", s200), // the dir's expire reaches a child watcher
		get("/z", "wait=true&waitIndex={i+5}", s200),   //
		get("", "recursive=true", s200),                // empty
		get("/t", "", s404).ecode(100),
	}},
	{name: "root", steps: []step{
		put("=/", "", "value=x", s400).ecode(107),
		put("=/", "dir=true", "", s400).ecode(107),
		put("=/", "prevExist=true", "value=x", s400).ecode(107),
		del("=/", "", s400).ecode(107),
		del("=/", "dir=true", s400).ecode(107),
		del("=/", "recursive=true", s400).ecode(107),
		get("=/", "sorted=true", s200), // still there
	}},
	{name: "cleared", steps: []step{
		put("/k", "", "value=x", 0).times(1001),                 // i+1 ... i+1001
		get("/k", "wait=true&waitIndex={i+1}", s400).ecode(401), // history holds i+2 ... i+1001
		get("/k", "wait=true&waitIndex={i+2}", s200),            // the oldest kept event
		get("/k", "wait=true&waitIndex={i+1001}", s200),         // the newest
	}},
}

// Notes of the etcd bugs that Cairn fixes (cairnFix steps).
const (
	dirIndexBug      = "etcd 2.x/3.4 answer a dir TTL update with the new modifiedIndex but do not store it (n.Write fails on dirs; reference §1.2.4, §3 item 9); Cairn stores it"
	redirectFix      = "etcd answers 301 to a non-clean path for every method and Go clients follow a 301 for PUT/POST/DELETE as a GET (reference §1.2.1, §3 item 17); Cairn answers 307 to methods other than GET and HEAD"
	hiddenHistoryFix = "etcd's history scan does not apply the hidden-key rule of live notification, so a recursive watch from a past index sees /_hidden keys that a live one skips; Cairn applies one rule to both"
	siblingBug       = "etcd's history scan matches the delete of dir /a for a watcher on /ab (strings.HasPrefix(key, prevNode.Key) without a separator); only ancestors may match"
)

// TestDifferential compares cairn with etcd 3.4 request by request.
func TestDifferential(t *testing.T) {
	t.Parallel()
	sut := startCairn(t, cairnHistoryArgs...)
	ref := StartEtcd(t, testPKI, "ref")
	runDifferential(t, ref, sut, scripts)
}

// TestDifferentialEtcdSelf validates the harness: two etcds must compare
// equal on every script (a few seconds), so a failure of TestDifferential
// is cairn's and not the normalization's.
func TestDifferentialEtcdSelf(t *testing.T) {
	t.Parallel()
	a := StartEtcd(t, testPKI, "ref")
	b := StartEtcd(t, testPKI, "other")
	runDifferential(t, a, b, scripts)
}

// cairnHistoryArgs give cairn etcd's 1000-event watch history (its default
// is far larger), so that the "cleared" script (error 401) compares.
var cairnHistoryArgs = []string{"--history-size", "1000"}
