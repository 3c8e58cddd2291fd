package kube

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/skiffml/skiff/engine/spec"
	"github.com/skiffml/skiff/executors"
	"github.com/skiffml/skiff/executors/launch"
)

var update = flag.Bool("update", false, "rewrite the golden pod specs in testdata/pods")

// baseSpec is the spec every golden case starts from.
func baseSpec() *executors.Spec {
	return &executors.Spec{
		ID: "5f0c2a4e-8d1b-4c53-9a57-3e1f0b6a7c21-3-1", RunID: "5f0c2a4e-8d1b-4c53-9a57-3e1f0b6a7c21",
		Task: "train-model", TaskIndex: 3, Attempt: 1,
		Image: "python:3.12", Command: []string{"python", "-c"}, Args: []string{"print('hi')"},
		Env: []spec.EnvVar{{Name: "LR", Value: "0.1"}},
	}
}

// withLauncher gives s an input artifact and outputs, and c a launcher
// with a fixed key and clock, so that the token in the pod is fixed.
func withLauncher(s *executors.Spec, c *Config) {
	keys, err := launch.NewKeys([]byte("0123456789abcdef0123456789abcdef"))
	if err != nil {
		panic(err)
	}
	c.Launcher = &Launcher{Image: "skiff:dev", API: "http://skiff.example:8080", Keys: keys}
	c.Clock = func() time.Time { return time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC) }
	s.Inputs = []executors.ArtifactInput{{Name: "data", Ref: spec.ArtifactRef{
		Digest: "sha256:" + strings.Repeat("ab", 32), Size: 5, Type: spec.TypeDataset}}}
	s.Outputs = []executors.OutputSpec{{Name: "model", Type: spec.TypeModel}, {Name: "acc", Type: spec.TypeFloat}}
}

func TestBuildPod_Golden(t *testing.T) {
	cases := []struct {
		name string
		mod  func(*executors.Spec, *Config)
		kube string // the step's KFP kubernetes settings
	}{
		{name: "basic"},
		{name: "resources", mod: func(s *executors.Spec, _ *Config) {
			s.Resources = spec.Resources{MilliCPU: 1500, MemoryBytes: 2 << 30}
			s.Timeout = 90*time.Second + time.Millisecond
			s.WorkingDir = "/work"
		}},
		{name: "gpu", mod: func(s *executors.Spec, _ *Config) { s.Resources.GPU = 1 }},
		{name: "gpu-vendor-config", mod: func(s *executors.Spec, c *Config) {
			s.Resources.GPU = 2
			c.GPUResource = "gpu.intel.com/i915"
		}},
		{name: "accelerator-resource", mod: func(s *executors.Spec, _ *Config) {
			s.Resources = spec.Resources{GPU: 1, Accelerator: "amd.com/gpu"}
		}},
		{name: "accelerator-model", mod: func(s *executors.Spec, _ *Config) {
			s.Resources = spec.Resources{GPU: 4, Accelerator: "NVIDIA_TESLA_T4"}
		}},
		{name: "service-account", mod: func(_ *executors.Spec, c *Config) {
			c.ServiceAccount, c.Namespace, c.Instance = "pipeline-runner", "ml-team", "prod"
			c.ImagePullPolicy = "IfNotPresent"
		}},
		{name: "default-image", mod: func(s *executors.Spec, c *Config) { s.Image, c.DefaultImage = "", "busybox:1" }},
		{name: "secret-as-volume", kube: `{"secretAsVolume":[
			{"secretName":"old-style","mountPath":"/secrets/old"},
			{"secretNameParameter":{"runtimeValue":{"constant":"creds"}},"mountPath":"/secrets/creds","optional":true}]}`},
		{name: "secret-as-env", kube: `{"secretAsEnv":[{"secretNameParameter":{"runtimeValue":{"constant":"db"}},
			"keyToEnv":[{"secretKey":"user","envVar":"DB_USER"},{"secretKey":"password","envVar":"DB_PASSWORD"}],"optional":false}]}`},
		{name: "config-map-as-volume", kube: `{"configMapAsVolume":[{"configMapNameParameter":{"runtimeValue":{"constant":"settings"}},"mountPath":"/etc/settings"}]}`},
		{name: "config-map-as-env", kube: `{"configMapAsEnv":[{"configMapName":"settings","keyToEnv":[{"configMapKey":"mode","envVar":"MODE"}],"optional":true}]}`},
		{name: "pvc-mount", kube: `{"pvcMount":[
			{"constant":"old-claim","mountPath":"/data/old"},
			{"pvcNameParameter":{"runtimeValue":{"constant":"datasets"}},"mountPath":"/data","subPath":"imagenet"}]}`},
		{name: "empty-dir", kube: `{"emptyDirMounts":[{"volumeName":"scratch","mountPath":"/scratch"},
			{"volumeName":"fast","mountPath":"/fast","medium":"Memory","sizeLimit":"1Gi"}]}`},
		{name: "shared-memory", kube: `{"enabledSharedMemory":{"volumeName":"shm","size":"2Gi"}}`},
		{name: "field-path-as-env", kube: `{"fieldPathAsEnv":[{"name":"POD_NAME","fieldPath":"metadata.name"},{"name":"NODE","fieldPath":"spec.nodeName"}]}`},
		{name: "pod-metadata", kube: `{"podMetadata":{"labels":{"team":"vision","cost-center":"42"},"annotations":{"example.com/owner":"ana","note":"free text: ok"}}}`},
		{name: "image-pull", kube: `{"imagePullSecret":[{"secretName":"regcred"},{"secretNameParameter":{"runtimeValue":{"constant":"other"}}}],"imagePullPolicy":"Always"}`},
		{name: "node-selector", kube: `{"nodeSelector":{"labels":{"disktype":"ssd","topology.kubernetes.io/zone":"eu-1a"}}}`},
		{name: "node-selector-json", kube: `{"nodeSelector":{"labels":{"ignored":"yes"},"nodeSelectorJson":{"runtimeValue":{"constant":{"pool":"gpu-a100"}}}}}`},
		{name: "tolerations", kube: `{"tolerations":[
			{"key":"nvidia.com/gpu","operator":"Exists","effect":"NoSchedule"},
			{"key":"spot","operator":"Equal","value":"true","effect":"NoExecute","tolerationSeconds":"300"},
			{"tolerationJson":{"runtimeValue":{"constant":"{\"key\":\"dedicated\",\"operator\":\"Equal\",\"value\":\"ml\",\"effect\":\"NoSchedule\"}"}}}]}`},
		{name: "node-affinity", kube: `{"nodeAffinity":[
			{"matchExpressions":[{"key":"kubernetes.io/arch","operator":"In","values":["amd64"]}]},
			{"matchExpressions":[{"key":"gpu-gen","operator":"Gt","values":["7"]}],"weight":50},
			{"nodeAffinityJson":{"runtimeValue":{"constant":{"requiredDuringSchedulingIgnoredDuringExecution":{"nodeSelectorTerms":[{"matchFields":[{"key":"metadata.name","operator":"NotIn","values":["bad-node"]}]}]}}}}}]}`},
		{name: "pod-affinity", kube: `{"podAffinity":[
			{"matchPodLabels":{"app":"cache"},"topologyKey":"kubernetes.io/hostname"},
			{"matchPodExpressions":[{"key":"app","operator":"In","values":["trainer"]}],"topologyKey":"kubernetes.io/hostname","anti":true,"weight":100},
			{"matchPodLabels":{"app":"db"},"topologyKey":"topology.kubernetes.io/zone","namespaces":["data"],"matchNamespaceLabels":{"env":"prod"}}]}`},
		{name: "launcher", mod: withLauncher},
		{name: "launcher-and-kfp-init-container", mod: withLauncher,
			kube: `{"initContainers":[{"name":"fetch","image":"busybox:1","command":["true"]}]}`},
		{name: "active-deadline", mod: func(s *executors.Spec, _ *Config) { s.Timeout = time.Hour },
			kube: `{"activeDeadlineSeconds":600}`},
		{name: "security-context", kube: `{"securityContext":{"runAsUser":"1000","runAsGroup":100,"runAsNonRoot":true}}`},
		{name: "generic-ephemeral-volume", kube: `{"genericEphemeralVolume":[
			{"volumeName":"eph","mountPath":"/eph","accessModes":["ReadWriteOnce"],"size":"5Gi","defaultStorageClass":true,"metadata":{"labels":{"a":"b"}}},
			{"volumeName":"eph2","mountPath":"/eph2","accessModes":["ReadWriteMany"],"size":"1Gi","storageClassName":"fast"}]}`},
		{name: "init-containers", kube: `{"emptyDirMounts":[{"volumeName":"shared","mountPath":"/shared"}],"initContainers":[
			{"name":"fetch","image":"busybox:1","command":["sh","-c"],"args":["echo hi > /shared/x"],"env":[{"name":"A","value":"1"}],
			 "volumeMounts":[{"volumeName":"shared","mountPath":"/shared"}],"resources":{"requests":{"cpu":"100m"},"limits":{"memory":"64Mi"}}},
			{"name":"proxy","image":"envoy:1","restartPolicy":"Always"}]}`},
		{name: "pod-resource-claims", kube: `{"podResourceClaims":[{"resourceClaimTemplateName":"single-gpu"}]}`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s, cfg := baseSpec(), Config{}
			if c.mod != nil {
				c.mod(s, &cfg)
			}
			if c.kube != "" {
				s.Kubernetes = json.RawMessage(c.kube)
			}
			pod, err := BuildPod(cfg, s)
			if err != nil {
				t.Fatal(err)
			}
			got, err := json.MarshalIndent(pod, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, '\n')
			path := filepath.Join("testdata", "pods", c.name+".json")
			if *update {
				if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test -run TestBuildPod_Golden -update to write it)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("pod spec differs from %s (rerun with -update after checking):\n%s", path, got)
			}
		})
	}
}

// TestBuildPod_BadSettings: every bad setting is refused with an error
// wrapping ErrBadSpec that names the field.
func TestBuildPod_BadSettings(t *testing.T) {
	cases := []struct {
		name, kube, field string
		mod               func(*executors.Spec, *Config)
	}{
		{"unknown field", `{"secretAsVolumes":[]}`, `"secretAsVolumes"`, nil},
		{"unknown nested field", `{"secretAsVolume":[{"secretName":"a","mountPath":"/a","mode":1}]}`, `"mode"`, nil},
		{"wrong type", `{"pvcMount":{"constant":"x"}}`, "kubernetes.pvcMount", nil},
		{"not an object", `[1,2]`, "kubernetes", nil},
		{"trailing data", `{} {}`, "kubernetes", nil},
		{"secret without name", `{"secretAsVolume":[{"mountPath":"/a"}]}`, "kubernetes.secretAsVolume[0].secretNameParameter", nil},
		{"secret name from a task output", `{"secretAsEnv":[{"secretNameParameter":{"taskOutputParameter":{"producerTask":"a","outputParameterKey":"b"}},"keyToEnv":[{"secretKey":"k","envVar":"V"}]}]}`,
			"kubernetes.secretAsEnv[0].secretNameParameter", nil},
		{"secret env without variable", `{"secretAsEnv":[{"secretName":"s","keyToEnv":[{"secretKey":"k"}]}]}`, "kubernetes.secretAsEnv[0].keyToEnv[0].envVar", nil},
		{"relative mount path", `{"pvcMount":[{"constant":"c","mountPath":"data"}]}`, "kubernetes.pvcMount[0].mountPath", nil},
		{"pvc from pipeline input", `{"pvcMount":[{"componentInputParameter":"claim","mountPath":"/d"}]}`, "kubernetes.pvcMount[0]", nil},
		{"mounted twice", `{"emptyDirMounts":[{"volumeName":"a","mountPath":"/x"},{"volumeName":"b","mountPath":"/x"}]}`, "kubernetes.emptyDirMounts[1].mountPath", nil},
		{"volume name twice", `{"emptyDirMounts":[{"volumeName":"a","mountPath":"/x"},{"volumeName":"a","mountPath":"/y"}]}`, "kubernetes.emptyDirMounts[1]", nil},
		{"bad volume name", `{"emptyDirMounts":[{"volumeName":"Not_Valid","mountPath":"/x"}]}`, "kubernetes.emptyDirMounts[0]", nil},
		{"bad medium", `{"emptyDirMounts":[{"volumeName":"a","mountPath":"/x","medium":"Disk"}]}`, "kubernetes.emptyDirMounts[0].medium", nil},
		{"bad size", `{"enabledSharedMemory":{"size":"lots"}}`, "kubernetes.enabledSharedMemory.size", nil},
		{"reserved label", `{"podMetadata":{"labels":{"skiff.io/run":"x"}}}`, "kubernetes.podMetadata.labels.skiff.io/run", nil},
		{"bad label value", `{"podMetadata":{"labels":{"a":"has space"}}}`, "kubernetes.podMetadata.labels.a", nil},
		{"bad pull policy", `{"imagePullPolicy":"Sometimes"}`, "kubernetes.imagePullPolicy", nil},
		{"negative deadline", `{"activeDeadlineSeconds":-5}`, "kubernetes.activeDeadlineSeconds", nil},
		{"deadline not a number", `{"activeDeadlineSeconds":"soon"}`, "kubernetes.activeDeadlineSeconds", nil},
		{"bad toleration operator", `{"tolerations":[{"key":"a","operator":"Maybe"}]}`, "kubernetes.tolerations[0].operator", nil},
		{"bad toleration json", `{"tolerations":[{"tolerationJson":{"runtimeValue":{"constant":"{\"key\":1}"}}}]}`, "kubernetes.tolerations[0].tolerationJson", nil},
		{"bad affinity operator", `{"nodeAffinity":[{"matchExpressions":[{"key":"a","operator":"Near"}]}]}`, "kubernetes.nodeAffinity[0].matchExpressions[0].operator", nil},
		{"bad affinity weight", `{"nodeAffinity":[{"matchExpressions":[{"key":"a","operator":"Exists"}],"weight":500}]}`, "kubernetes.nodeAffinity[0].weight", nil},
		{"pod affinity without topology", `{"podAffinity":[{"matchPodLabels":{"a":"b"}}]}`, "kubernetes.podAffinity[0].topologyKey", nil},
		{"negative user", `{"securityContext":{"runAsUser":-1}}`, "kubernetes.securityContext.runAsUser", nil},
		{"ephemeral without size", `{"genericEphemeralVolume":[{"volumeName":"e","mountPath":"/e","defaultStorageClass":true}]}`, "kubernetes.genericEphemeralVolume[0].size", nil},
		{"ephemeral without class", `{"genericEphemeralVolume":[{"volumeName":"e","mountPath":"/e","size":"1Gi"}]}`, "kubernetes.genericEphemeralVolume[0].storageClassName", nil},
		{"init container on a missing volume", `{"initContainers":[{"name":"i","image":"x","volumeMounts":[{"volumeName":"nope","mountPath":"/n"}]}]}`,
			"kubernetes.initContainers[0].volumeMounts[0].volumeName", nil},
		{"init container named main", `{"initContainers":[{"name":"main","image":"x"}]}`, "kubernetes.initContainers[0].name", nil},
		{"claim without template", `{"podResourceClaims":[{}]}`, "kubernetes.podResourceClaims[0].resourceClaimTemplateName", nil},
		{"outputs without a launcher", ``, "outputs: moving artifacts", func(s *executors.Spec, _ *Config) {
			s.Outputs = []executors.OutputSpec{{Name: "n", Type: spec.TypeInt}}
		}},
		{"launcher step without command", ``, "command: required", func(s *executors.Spec, c *Config) {
			withLauncher(s, c)
			s.Command = nil
		}},
		{"no image", ``, "image", func(s *executors.Spec, _ *Config) { s.Image = "" }},
		{"relative working dir", ``, "workingDir", func(s *executors.Spec, _ *Config) { s.WorkingDir = "rel" }},
		{"bad accelerator resource", ``, "resources.accelerator", func(s *executors.Spec, _ *Config) { s.Resources = spec.Resources{GPU: 1, Accelerator: "a/b/c"} }},
		{"negative gpu", ``, "resources", func(s *executors.Spec, _ *Config) { s.Resources.GPU = -1 }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s, cfg := baseSpec(), Config{}
			if c.mod != nil {
				c.mod(s, &cfg)
			}
			s.Kubernetes = json.RawMessage(c.kube)
			pod, err := BuildPod(cfg, s)
			if err == nil {
				t.Fatalf("accepted: %+v", pod.Spec)
			}
			if !errors.Is(err, executors.ErrBadSpec) {
				t.Errorf("error %v does not wrap ErrBadSpec", err)
			}
			if !strings.Contains(err.Error(), c.field) {
				t.Errorf("error %q does not name %s", err, c.field)
			}
		})
	}
}

func TestPodName_DeterministicBoundedAndDistinct(t *testing.T) {
	long := strings.Repeat("Run_With.Odd CHARS", 10)
	ids := []string{"r-1-1", "r-1-2", "R-1-1", long + "-0-1", long + "-0-2", "---", ""}
	seen := map[string]string{}
	for _, id := range ids {
		n := PodName(id)
		if n != PodName(id) {
			t.Fatalf("PodName(%q) is not deterministic", id)
		}
		if len(n) > 63 || !dnsLabel.MatchString(n) {
			t.Errorf("PodName(%q) = %q: not a DNS-1123 label of at most 63 characters", id, n)
		}
		if other, dup := seen[n]; dup {
			t.Errorf("PodName(%q) = PodName(%q) = %q", id, other, n)
		}
		seen[n] = id
		if v := labelValue(id); len(v) > 63 || (v != "" && !labelRe.MatchString(v)) {
			t.Errorf("labelValue(%q) = %q is not a label value", id, v)
		}
	}
	if got := PodName("abc-0-1"); !strings.HasPrefix(got, "skiff-abc-0-1-") {
		t.Errorf("PodName(abc-0-1) = %q, want the readable id in it", got)
	}
}

func TestConfig_ValidateNamesFields(t *testing.T) {
	err := Config{Namespace: "Bad_NS", Instance: "no spaces", GPUResource: "a/b/c", ImagePullPolicy: "Sometimes", GracePeriod: -1}.Validate()
	for _, f := range []string{"Client", "Namespace", "Instance", "GPUResource", "ImagePullPolicy", "GracePeriod"} {
		if err == nil || !strings.Contains(err.Error(), "config: "+f+":") {
			t.Errorf("Validate() = %v, want an error naming %s", err, f)
		}
	}
}

var (
	dnsLabel = regexpMust(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)
	labelRe  = regexpMust(`^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$`)
)
