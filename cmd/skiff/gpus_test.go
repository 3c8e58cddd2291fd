package main

import (
	"reflect"
	"testing"
)

func TestConfiguredGPUs(t *testing.T) {
	cases := []struct {
		val  string
		want []string
		bad  bool
	}{
		{"0,1", []string{"0", "1"}, false},
		{" 0 , GPU-abc ", []string{"0", "GPU-abc"}, false},
		{"", []string{}, false},
		{"none", []string{}, false},
		{"0,,1", nil, true},
		{"0,0", nil, true},
	}
	for _, tc := range cases {
		t.Setenv("SKIFF_GPUS", tc.val)
		got, err := configuredGPUs()
		if (err != nil) != tc.bad || (!tc.bad && !reflect.DeepEqual(got, tc.want)) {
			t.Errorf("SKIFF_GPUS=%q: %v, %v", tc.val, got, err)
		}
	}
}
