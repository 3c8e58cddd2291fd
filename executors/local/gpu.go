package local

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// GPU is one device as nvidia-smi lists it.
type GPU struct {
	Index     int
	UUID      string
	Name      string
	MemoryMiB int64 // 0 when nvidia-smi says [N/A]
}

// nvidiaSMIArgs is the query DetectGPUs runs; ParseNvidiaSMI reads its output.
var nvidiaSMIArgs = []string{"--query-gpu=index,uuid,name,memory.total", "--format=csv,noheader,nounits"}

// DetectGPUs lists the node's GPUs with nvidia-smi. No nvidia-smi on PATH
// means no GPUs (and no error).
func DetectGPUs(ctx context.Context) ([]GPU, error) {
	bin, err := exec.LookPath("nvidia-smi")
	if err != nil {
		return nil, nil
	}
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, nvidiaSMIArgs...).Output()
	if err != nil {
		return nil, fmt.Errorf("nvidia-smi: %w", err)
	}
	return ParseNvidiaSMI(out)
}

// ParseNvidiaSMI parses the output of `nvidia-smi
// --query-gpu=index,uuid,name,memory.total --format=csv,noheader,nounits`.
// Columns after the fourth are ignored, so a wider query parses too. Blank
// lines are skipped; a line with fewer columns, a bad index or memory, or
// a repeated index is an error naming the line.
func ParseNvidiaSMI(out []byte) ([]GPU, error) {
	var gpus []GPU
	seen := map[int]bool{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for line := 1; sc.Scan(); line++ {
		text := strings.TrimSpace(sc.Text())
		if text == "" {
			continue
		}
		f := strings.Split(text, ",")
		if len(f) < 4 {
			return nil, fmt.Errorf("nvidia-smi line %d: want at least 4 columns, got %d", line, len(f))
		}
		for i := range f {
			f[i] = strings.TrimSpace(f[i])
		}
		idx, err := strconv.Atoi(f[0])
		if err != nil || idx < 0 {
			return nil, fmt.Errorf("nvidia-smi line %d: bad index %q", line, f[0])
		}
		if seen[idx] {
			return nil, fmt.Errorf("nvidia-smi line %d: index %d listed twice", line, idx)
		}
		seen[idx] = true
		var mem int64
		if !strings.Contains(f[3], "N/A") {
			mem, err = strconv.ParseInt(f[3], 10, 64)
			if err != nil || mem < 0 {
				return nil, fmt.Errorf("nvidia-smi line %d: bad memory.total %q", line, f[3])
			}
		}
		gpus = append(gpus, GPU{Index: idx, UUID: f[1], Name: f[2], MemoryMiB: mem})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("nvidia-smi: %w", err)
	}
	return gpus, nil
}

// totalMemory reads MemTotal from /proc/meminfo.
func totalMemory() (int64, error) {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0, err
	}
	for l := range strings.Lines(string(b)) {
		rest, ok := strings.CutPrefix(l, "MemTotal:")
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if len(f) == 0 {
			break
		}
		kb, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("/proc/meminfo: %w", err)
		}
		return kb * 1024, nil
	}
	return 0, fmt.Errorf("/proc/meminfo: no MemTotal")
}
