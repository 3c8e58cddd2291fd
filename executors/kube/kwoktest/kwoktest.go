// Package kwoktest helps tests against the loopback control plane of
// make kube-up (tools/kube), whose nodes are kwok's: kwok runs no
// containers, but it serves a pod's container log from a file, as a
// kubelet would, once a kwok Logs object (kwok.x-k8s.io/v1alpha1, with the
// pod's namespace and name) names that file. The API server reaches kwok
// at the node's kubelet port, so pods/log (kubectl logs, client-go's
// GetLogs) reads the file through the real API server.
package kwoktest

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/tools/clientcmd"
)

// LogsResource is kwok's Logs resource.
var LogsResource = schema.GroupVersionResource{Group: "kwok.x-k8s.io", Version: "v1alpha1", Resource: "logs"}

// ServeLogs makes kwok serve the log of container of pod namespace/name
// from file (in the CRI log format: AppendLog writes it), by creating a
// Logs object through the API server of kubeconfig; the test's cleanup
// deletes it. The pod may not exist yet.
func ServeLogs(t testing.TB, kubeconfig, namespace, pod, container, file string) {
	t.Helper()
	rest, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	dyn, err := dynamic.NewForConfig(rest)
	if err != nil {
		t.Fatal(err)
	}
	obj := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "kwok.x-k8s.io/v1alpha1",
		"kind":       "Logs",
		"metadata":   map[string]any{"name": pod, "namespace": namespace},
		"spec": map[string]any{"logs": []any{map[string]any{
			"containers": []any{container},
			"logsFile":   file,
			"follow":     true,
		}}},
	}}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := dyn.Resource(LogsResource).Namespace(namespace).Create(ctx, obj, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create kwok Logs %s/%s (is the control plane of make kube-up running, with kwok's Logs CRD?): %v", namespace, pod, err)
	}
	t.Cleanup(func() {
		err := dyn.Resource(LogsResource).Namespace(namespace).Delete(context.Background(), pod, metav1.DeleteOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			t.Logf("delete kwok Logs %s/%s: %v", namespace, pod, err)
		}
	})
}

// AppendLog appends lines to a container log file in the CRI format
// (timestamp, stream, F for a full line, text), creating it if needed.
func AppendLog(t testing.TB, file string, lines ...string) {
	t.Helper()
	f, err := os.OpenFile(file, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, l := range lines {
		fmt.Fprintf(&b, "%s stdout F %s\n", time.Now().UTC().Format(time.RFC3339Nano), l)
	}
	if _, err := f.WriteString(b.String()); err != nil {
		f.Close()
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}
