package main

import (
	"fmt"
	"os"
	"strings"
)

// configuredGPUs reads SKIFF_GPUS: unset = detect with nvidia-smi; "" or
// "none" = no GPU; else a comma-separated list of the GPU ids (as
// CUDA_VISIBLE_DEVICES takes them: indices or UUIDs) steps may be given.
func configuredGPUs() ([]string, error) {
	v, ok := os.LookupEnv("SKIFF_GPUS")
	if !ok {
		return nil, nil
	}
	v = strings.TrimSpace(v)
	if v == "" || v == "none" {
		return []string{}, nil
	}
	var ids []string
	seen := map[string]bool{}
	for _, id := range strings.Split(v, ",") {
		id = strings.TrimSpace(id)
		if id == "" || seen[id] {
			return nil, fmt.Errorf("SKIFF_GPUS=%q: want a comma-separated list of distinct GPU ids, e.g. 0,1", v)
		}
		seen[id] = true
		ids = append(ids, id)
	}
	return ids, nil
}
