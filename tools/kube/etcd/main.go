// Command etcd is etcd's own server main, built here as a tool module so the
// Kubernetes test control plane (make kube-up) has an etcd of a known
// version without downloading a release binary.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
