package bench

import "io"

// writeReopen prints the --reopen measurement (none yet).
func (r *Report) writeReopen(w io.Writer) {}
