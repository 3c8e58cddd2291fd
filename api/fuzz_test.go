package api

import (
	"net/url"
	"testing"
)

// FuzzDecodeRun: the run-create decoder and the spec compiler never panic,
// and every rejection is an *Error with a 4xx status.
func FuzzDecodeRun(f *testing.F) {
	f.Add([]byte(`{"display_name":"x","pipeline_spec":"name: p\ntasks:\n  - name: a\n    command: [x]\n"}`))
	f.Add([]byte(`{"pipeline_spec":{"pipeline_spec":{"name":"p","tasks":[]},"platform_spec":{}}}`))
	f.Add([]byte(`{"pipeline_spec":{"pipelineInfo":{"name":"p"}}}`))
	f.Add([]byte(`{"runtime_config":{"parameters":{"a":1}},"bogus":true}`))
	f.Add([]byte(`{"display_name":5}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var in Run
		err := decodeJSONBytes(data, &in)
		if err == nil {
			_, err = parseRunSpec(in.PipelineSpec)
		}
		if err != nil {
			e, ok := err.(*Error)
			if !ok || e.HTTPStatus() < 400 || e.HTTPStatus() >= 500 {
				t.Fatalf("error %T %v", err, err)
			}
		}
	})
}

// FuzzListQuery: filters, sort_by and page tokens never panic, and a
// rejection is a 400.
func FuzzListQuery(f *testing.F) {
	f.Add(`{"predicates":[{"operation":1,"key":"display_name","stringValue":"Default"}]}`, "created_at desc", "", "2")
	f.Add(`{"predicates":[{"operation":"IN","key":"run_id","string_values":{"values":["a",1]}}]}`, "name", "abc", "0")
	f.Add(`{"predicates":[{"operation":"GREATER_THAN","key":"created_at","timestamp_value":"2020-01-01T00:00:00Z"}]}`, "", "", "")
	f.Fuzz(func(t *testing.T, filter, sortBy, token, size string) {
		q := url.Values{"filter": {filter}, "sort_by": {sortBy}, "page_token": {token}, "page_size": {size}}
		lq, err := parseListQuery(q, "scope", runFieldsForFuzz, "created_at")
		if err != nil {
			if e, ok := err.(*Error); !ok || e.HTTPStatus() != 400 {
				t.Fatalf("error %T %v", err, err)
			}
			return
		}
		items := []int{1, 2, 3}
		page(lq, items, func(int) fieldFunc { return runFieldsForFuzz })
	})
}

func runFieldsForFuzz(key string) (filterValue, bool) {
	switch key {
	case "display_name", "name", "run_id", "state":
		return strField(key), true
	case "created_at":
		return filterValue{kind: 'n', n: 1}, true
	}
	return filterValue{}, false
}
