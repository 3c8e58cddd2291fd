package kfp

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strconv"
	"strings"
)

// Paths of the kubernetes platform's settings in the PlatformSpec.
const (
	kubeExecutorsPath = "platforms.kubernetes.deploymentSpec.executors"
	kubeWorkspacePath = "platforms.kubernetes.pipelineConfig.workspace"
)

// kubeNotApplied ends the warning about Kubernetes settings Skiff keeps.
const kubeNotApplied = "kept for a Kubernetes executor; the local and docker executors do not apply "

// platformSettings compiles the kubernetes platform's settings: each
// executor's config becomes the compact JSON that its steps carry in
// Task.Kubernetes, with one warning per executor naming the settings the
// local and docker executors do not apply; the workspace config is kept
// for the steps that use the workspace.
func (c *compiler) platformSettings(p *PlatformSpec) {
	c.kube = map[string]json.RawMessage{}
	if p == nil || p.Platforms["kubernetes"] == nil {
		return
	}
	k := p.Platforms["kubernetes"]
	if k.DeploymentSpec != nil {
		for _, label := range sortedKeys(k.DeploymentSpec.Executors) {
			c.kubeExecutor(key(kubeExecutorsPath, label), label, k.DeploymentSpec.Executors[label])
		}
	}
	if pc := k.PipelineConfig; pc != nil && pc.Workspace != nil {
		ws := pc.Workspace
		if ws.Size != "" {
			if _, err := ParseMemory(ws.Size); err != nil {
				c.fail(kubeWorkspacePath+".size", fmt.Sprintf("expected a size like 10Gi, got %q", ws.Size))
			}
		}
		if ws.Kubernetes != nil {
			c.kubeWarning(kubeWorkspacePath+".kubernetes", ws.Kubernetes)
		}
		c.workspace = ws
	}
}

// kubeExecutor compiles one executor's Kubernetes settings.
func (c *compiler) kubeExecutor(path, label string, cfg *KubernetesExecutorConfig) {
	if cfg == nil {
		return
	}
	if c.doc.DeploymentSpec == nil || c.doc.DeploymentSpec.Executors[label] == nil {
		c.warn(path, fmt.Sprintf("no executor %q in deploymentSpec.executors: ignored", label))
		return
	}
	switch cfg.ImagePullPolicy {
	case "", "Always", "Never", "IfNotPresent":
	default:
		c.fail(path+".imagePullPolicy", fmt.Sprintf("expected Always, Never or IfNotPresent, got %q", cfg.ImagePullPolicy))
	}
	if n := cfg.ActiveDeadlineSeconds; n != nil {
		if v, err := strconv.ParseInt(n.String(), 10, 64); err != nil || v < 0 {
			c.fail(path+".activeDeadlineSeconds", fmt.Sprintf("expected a whole number of seconds, got %s", n))
		}
	}
	if c.kubeWarning(path, cfg) {
		c.kube[label] = mustJSON(cfg)
	}
}

// kubeWarning warns about the settings of v (a struct of `kfp:"kube,..."`
// fields) that are set, and reports whether any is.
func (c *compiler) kubeWarning(path string, v any) bool {
	set := kubeFeatures(v)
	if len(set) == 0 {
		return false
	}
	if c.opts.Kube {
		return true
	}
	them := "them"
	if len(set) == 1 {
		them = "it"
	}
	c.warn(path, "Kubernetes "+strings.Join(set, ", ")+": "+kubeNotApplied+them)
	return true
}

// kubeFeatures names the `kfp:"kube,WHAT"` fields of the struct v points
// to that are set, in field order.
func kubeFeatures(v any) []string {
	rv := reflect.ValueOf(v).Elem()
	var set []string
	for i := 0; i < rv.NumField(); i++ {
		what, ok := strings.CutPrefix(rv.Type().Field(i).Tag.Get("kfp"), "kube,")
		f := rv.Field(i)
		empty := f.IsZero()
		if k := f.Kind(); k == reflect.Slice || k == reflect.Map {
			empty = f.Len() == 0
		}
		if ok && !empty {
			set = append(set, what)
		}
	}
	return set
}
