package webhook

import (
	"bytes"
	"encoding/json"
	"strconv"
	"testing"
)

// oracle computes Info with encoding/json decoding into generic maps: the
// semantics the one-pass scanner promises.
func oracle(payload []byte) (Info, bool) {
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return Info{}, false
	}
	if _, err := dec.Token(); err == nil {
		return Info{}, false // trailing data
	}
	m, ok := v.(map[string]any)
	if !ok {
		return Info{}, false
	}
	str := func(m map[string]any, k string) string { s, _ := m[k].(string); return s }
	num := func(m map[string]any, k string) int64 {
		n, _ := m[k].(json.Number)
		i, err := strconv.ParseInt(string(n), 10, 64)
		if err != nil {
			return 0
		}
		return i
	}
	obj := func(m map[string]any, k string) map[string]any { o, _ := m[k].(map[string]any); return o }
	first := func(m map[string]any) int64 {
		if m == nil {
			return 0
		}
		l, _ := m["pull_requests"].([]any)
		if len(l) == 0 {
			return 0
		}
		e, _ := l[0].(map[string]any)
		return num(e, "number")
	}
	info := Info{Action: str(m, "action"), Repo: str(obj(m, "repository"), "full_name"), Installation: num(obj(m, "installation"), "id")}
	for _, n := range []int64{num(obj(m, "pull_request"), "number"), num(obj(m, "issue"), "number"), first(obj(m, "check_run")), first(obj(m, "check_suite")), num(m, "number")} {
		if n > 0 {
			info.Number = int(n)
			break
		}
	}
	return info, true
}

func FuzzDecode(f *testing.F) {
	for _, s := range []string{
		`{"action":"opened","number":7,"pull_request":{"number":7},"repository":{"full_name":"eessi/compat"},"installation":{"id":42}}`,
		`{"action":"created","issue":{"number":9,"pull_request":{}},"repository":{"full_name":"o/r"}}`,
		`{"check_run":{"pull_requests":[{"number":3},{"number":4}]},"repository":{"full_name":"o/r"}}`,
		`{"check_suite":{"pull_requests":[]},"pull_request":null}`,
		`{"action":"\u006fpened","repository":{"full_name":"o\/r\ud83d\ude00"},"x":[1,-0.5e+3,true,false,null,{"a":[]}]}`,
		`{"pull_request":{"number":1},"pull_request":{"number":"2"}}`,
		`{"number":1e2,"installation":{"id":99999999999999999999}}`,
		"{\"action\":\"\xff\"}", `[1]`, `{"a":1}x`, `{"a":01}`, `{"a":"\x"}`, ` {} `, `{"a":-}`, `{"a":1.}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := Decode(data)
		want, ok := oracle(data)
		if valid := json.Valid(data); (err == nil) != (valid && ok) {
			t.Fatalf("Decode(%q) error = %v, json.Valid = %v, object = %v", data, err, valid, ok)
		}
		if err == nil && got != want {
			t.Fatalf("Decode(%q) = %+v, encoding/json gives %+v", data, got, want)
		}
	})
}

func BenchmarkDecode(b *testing.B) {
	body := bytes.Repeat([]byte("x"), 2000)
	payload := []byte(`{"action":"synchronize","number":7,"pull_request":{"number":7,"title":"t","body":"` + string(body) + `","head":{"sha":"abc"}},"repository":{"full_name":"o/r"},"installation":{"id":1}}`)
	b.SetBytes(int64(len(payload)))
	for b.Loop() {
		if _, err := Decode(payload); err != nil {
			b.Fatal(err)
		}
	}
}
