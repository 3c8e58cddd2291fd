package api

import (
	"bytes"
	"cmp"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// KFP's filter is a JSON-encoded api.Filter: {"predicates": [{"operation":
// EQUALS|1, "key": "display_name", "string_value"|"stringValue": "x"}]}. All
// predicates must hold. Both the enum name and its number are accepted, and
// both proto JSON spellings of each field.

type predicateOp int

const (
	opEquals      predicateOp = 1
	opNotEquals   predicateOp = 2
	opGreater     predicateOp = 3
	opGreaterEq   predicateOp = 5
	opLess        predicateOp = 6
	opLessEq      predicateOp = 7
	opIn          predicateOp = 8
	opIsSubstring predicateOp = 9
)

var opNames = map[string]predicateOp{
	"EQUALS": opEquals, "NOT_EQUALS": opNotEquals, "GREATER_THAN": opGreater,
	"GREATER_THAN_EQUALS": opGreaterEq, "LESS_THAN": opLess, "LESS_THAN_EQUALS": opLessEq,
	"IN": opIn, "IS_SUBSTRING": opIsSubstring,
}

// filterValue is a predicate's operand: a string, a number or a time.
type filterValue struct {
	s     string
	n     float64
	t     time.Time
	kind  byte // 's', 'n' or 't'
	multi []filterValue
}

type predicate struct {
	op  predicateOp
	key string
	val filterValue
}

// filter is a parsed KFP filter.
type filter struct{ preds []predicate }

type rawPredicate struct {
	Operation       json.RawMessage `json:"operation"`
	Key             string          `json:"key"`
	StringValue     *string         `json:"string_value"`
	StringValueC    *string         `json:"stringValue"`
	IntValue        *json.Number    `json:"int_value"`
	IntValueC       *json.Number    `json:"intValue"`
	LongValue       *json.Number    `json:"long_value"`
	LongValueC      *json.Number    `json:"longValue"`
	TimestampValue  *string         `json:"timestamp_value"`
	TimestampValueC *string         `json:"timestampValue"`
	BoolValue       *bool           `json:"bool_value"`
	BoolValueC      *bool           `json:"boolValue"`
	StringValues    *rawValues      `json:"string_values"`
	StringValuesC   *rawValues      `json:"stringValues"`
	IntValues       *rawValues      `json:"int_values"`
	IntValuesC      *rawValues      `json:"intValues"`
	LongValues      *rawValues      `json:"long_values"`
	LongValuesC     *rawValues      `json:"longValues"`
}

type rawValues struct {
	Values []json.RawMessage `json:"values"`
}

// parseFilter parses the filter query parameter; "" is no filter.
func parseFilter(text string) (*filter, error) {
	f := &filter{}
	if strings.TrimSpace(text) == "" {
		return f, nil
	}
	var raw struct {
		Predicates []rawPredicate `json:"predicates"`
	}
	dec := json.NewDecoder(strings.NewReader(text))
	dec.DisallowUnknownFields()
	dec.UseNumber()
	if err := dec.Decode(&raw); err != nil {
		return nil, badRequest("filter: invalid JSON: %s", describeJSONError(err))
	}
	for i, rp := range raw.Predicates {
		p, err := rp.parse()
		if err != nil {
			return nil, badRequest("filter.predicates[%d]: %v", i, err)
		}
		f.preds = append(f.preds, p)
	}
	return f, nil
}

func (rp rawPredicate) parse() (predicate, error) {
	p := predicate{key: rp.Key}
	if p.key == "" {
		return p, fmt.Errorf("key: required")
	}
	var name string
	var num int
	switch {
	case json.Unmarshal(rp.Operation, &num) == nil:
		p.op = predicateOp(num)
	case json.Unmarshal(rp.Operation, &name) == nil:
		op, ok := opNames[strings.ToUpper(name)]
		if !ok {
			return p, fmt.Errorf("operation: unknown %q", name)
		}
		p.op = op
	default:
		return p, fmt.Errorf("operation: required (EQUALS, NOT_EQUALS, GREATER_THAN, GREATER_THAN_EQUALS, LESS_THAN, LESS_THAN_EQUALS, IN, IS_SUBSTRING)")
	}
	if p.op < opEquals || p.op > opIsSubstring || p.op == 4 {
		return p, fmt.Errorf("operation: unknown %d", p.op)
	}
	var set int
	one := func(v filterValue) { p.val = v; set++ }
	if s := first(rp.StringValue, rp.StringValueC); s != nil {
		one(filterValue{kind: 's', s: *s})
	}
	for _, n := range []*json.Number{first(rp.IntValue, rp.IntValueC), first(rp.LongValue, rp.LongValueC)} {
		if n != nil {
			f, err := n.Float64()
			if err != nil {
				return p, fmt.Errorf("value: %v", err)
			}
			one(filterValue{kind: 'n', n: f})
		}
	}
	if b := first(rp.BoolValue, rp.BoolValueC); b != nil {
		one(filterValue{kind: 's', s: strconv.FormatBool(*b)})
	}
	if ts := first(rp.TimestampValue, rp.TimestampValueC); ts != nil {
		t, err := time.Parse(time.RFC3339Nano, *ts)
		if err != nil {
			return p, fmt.Errorf("timestamp_value: %v", err)
		}
		one(filterValue{kind: 't', t: t})
	}
	for _, vs := range []*rawValues{first(rp.StringValues, rp.StringValuesC), first(rp.IntValues, rp.IntValuesC), first(rp.LongValues, rp.LongValuesC)} {
		if vs == nil {
			continue
		}
		var multi []filterValue
		for _, raw := range vs.Values {
			var s string
			var n json.Number
			d := json.NewDecoder(bytes.NewReader(raw))
			d.UseNumber()
			switch {
			case json.Unmarshal(raw, &s) == nil:
				multi = append(multi, filterValue{kind: 's', s: s})
			case d.Decode(&n) == nil:
				f, _ := n.Float64()
				multi = append(multi, filterValue{kind: 'n', n: f})
			default:
				return p, fmt.Errorf("values: expected strings or numbers")
			}
		}
		one(filterValue{multi: multi})
	}
	if set != 1 {
		return p, fmt.Errorf("exactly one value field is required, got %d", set)
	}
	if (p.op == opIn) != (p.val.multi != nil) {
		return p, fmt.Errorf("IN takes a list of values (string_values, int_values or long_values), and only IN does")
	}
	return p, nil
}

func first[T any](a, b *T) *T {
	if a != nil {
		return a
	}
	return b
}

// fieldFunc returns an object's field by filter/sort key, and whether the
// key exists.
type fieldFunc func(key string) (filterValue, bool)

// check reports whether every key names a field (400 otherwise).
func (f *filter) check(fields fieldFunc) error {
	for i, p := range f.preds {
		if _, ok := fields(p.key); !ok {
			return badRequest("filter.predicates[%d].key: %q is not a filterable field", i, p.key)
		}
	}
	return nil
}

func (f *filter) match(fields fieldFunc) bool {
	for _, p := range f.preds {
		v, _ := fields(p.key)
		if !p.holds(v) {
			return false
		}
	}
	return true
}

func (p predicate) holds(v filterValue) bool {
	switch p.op {
	case opIn:
		for _, m := range p.val.multi {
			if compare(v, m) == 0 {
				return true
			}
		}
		return false
	case opIsSubstring:
		return strings.Contains(v.s, p.val.s)
	}
	c := compare(v, p.val)
	switch p.op {
	case opEquals:
		return c == 0
	case opNotEquals:
		return c != 0
	case opGreater:
		return c > 0
	case opGreaterEq:
		return c >= 0
	case opLess:
		return c < 0
	case opLessEq:
		return c <= 0
	}
	return false
}

// compare orders a field value against an operand; a time field compares
// with a timestamp, or with a number of Unix seconds.
func compare(field, operand filterValue) int {
	switch {
	case field.kind == 't' && operand.kind == 't':
		return field.t.Compare(operand.t)
	case field.kind == 't' && operand.kind == 'n':
		return cmp.Compare(float64(field.t.Unix()), operand.n)
	case field.kind == 'n' && operand.kind == 'n':
		return cmp.Compare(field.n, operand.n)
	case operand.kind == 'n':
		return cmp.Compare(field.s, strconv.FormatFloat(operand.n, 'f', -1, 64))
	}
	return strings.Compare(field.s, operand.s)
}

func strField(s string) filterValue     { return filterValue{kind: 's', s: s} }
func timeField(t time.Time) filterValue { return filterValue{kind: 't', t: t} }

// listQuery is the parsed page_size, page_token, sort_by and filter.
type listQuery struct {
	pageSize int
	offset   int
	sortKey  string
	desc     bool
	filter   *filter
	scope    string // hash of what the token is valid for
}

const (
	defaultPageSize = 20
	maxPageSize     = 1000
)

// parseListQuery reads the list parameters; scope names what else shapes
// the list (namespace, experiment), so a page token cannot be replayed
// against another list.
func parseListQuery(q map[string][]string, scope string, fields fieldFunc, defaultSort string) (*listQuery, error) {
	get := func(k string) string {
		if v := q[k]; len(v) > 0 {
			return v[0]
		}
		return ""
	}
	lq := &listQuery{pageSize: defaultPageSize}
	if s := get("page_size"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			return nil, badRequest("page_size: %q is not a non-negative integer", s)
		}
		if n > 0 {
			lq.pageSize = min(n, maxPageSize)
		}
	}
	sortBy := strings.TrimSpace(get("sort_by"))
	if sortBy == "" {
		sortBy = defaultSort
	}
	parts := strings.Fields(sortBy)
	switch {
	case len(parts) == 1:
	case len(parts) == 2 && strings.EqualFold(parts[1], "desc"):
		lq.desc = true
	case len(parts) == 2 && strings.EqualFold(parts[1], "asc"):
	default:
		return nil, badRequest("sort_by: %q: expected \"field\", \"field asc\" or \"field desc\"", sortBy)
	}
	lq.sortKey = parts[0]
	if _, ok := fields(lq.sortKey); !ok {
		return nil, badRequest("sort_by: %q is not a sortable field", lq.sortKey)
	}
	f, err := parseFilter(get("filter"))
	if err != nil {
		return nil, err
	}
	if err := f.check(fields); err != nil {
		return nil, err
	}
	lq.filter = f
	h := sha256.Sum256([]byte(scope + "\x00" + sortBy + "\x00" + get("filter")))
	lq.scope = base64.RawURLEncoding.EncodeToString(h[:6])
	if tok := get("page_token"); tok != "" {
		off, ok := parsePageToken(tok, lq.scope)
		if !ok {
			return nil, badRequest("page_token: invalid, or from a list with another filter, sort_by or scope")
		}
		lq.offset = off
	}
	return lq, nil
}

func parsePageToken(tok, scope string) (int, bool) {
	b, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil {
		return 0, false
	}
	s, off, ok := strings.Cut(string(b), ":")
	if !ok || s != scope {
		return 0, false
	}
	n, err := strconv.Atoi(off)
	return n, err == nil && n >= 0
}

// page filters, sorts and cuts items; it returns the page, the total that
// matched and the next page token.
func page[T any](lq *listQuery, items []T, fields func(T) fieldFunc) ([]T, int, string) {
	var kept []T
	var keys []filterValue
	for _, it := range items {
		ff := fields(it)
		if lq.filter.match(ff) {
			kept = append(kept, it)
			k, _ := ff(lq.sortKey)
			keys = append(keys, k)
		}
	}
	idx := make([]int, len(kept))
	for i := range idx {
		idx[i] = i
	}
	slices.SortStableFunc(idx, func(a, b int) int {
		c := compare(keys[a], keys[b])
		if lq.desc {
			c = -c
		}
		return c
	})
	total := len(kept)
	var out []T
	for i := lq.offset; i < total && len(out) < lq.pageSize; i++ {
		out = append(out, kept[idx[i]])
	}
	next := ""
	if end := lq.offset + len(out); end < total {
		next = base64.RawURLEncoding.EncodeToString([]byte(lq.scope + ":" + strconv.Itoa(end)))
	}
	return out, total, next
}
