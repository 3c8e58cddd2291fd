package main

import (
	"strings"
	"testing"

	"github.com/skiffml/skiff/engine/spec"
)

func TestReservedFieldsWarning_NamesTasks(t *testing.T) {
	p := &spec.Plan{Tasks: []spec.Task{
		{Name: "a", Retry: &spec.Retry{Limit: 2}},
		{Name: "b", Cache: &spec.Cache{Enabled: true}},
		{Name: "c", Cache: &spec.Cache{Enabled: false}},
	}}
	w := reservedFieldsWarning(p)
	if strings.Contains(w, "retry") || !strings.Contains(w, "caching is not applied yet (tasks b)") {
		t.Errorf("warning = %q", w)
	}
	if reservedFieldsWarning(&spec.Plan{Tasks: []spec.Task{{Name: "x"}}}) != "" {
		t.Error("warning for a plan without retry or cache")
	}
}
