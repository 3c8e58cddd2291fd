package chaostest

import "github.com/anishathalye/porcupine"

// visualize writes porcupine's HTML view of a failed check.
func visualize(info porcupine.LinearizationInfo, path string) error {
	return porcupine.VisualizePath(Model, info, path)
}
