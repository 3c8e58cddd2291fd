package docker

// CutFollowedLogs makes every followed log stream of x end after n bytes,
// as a busy Docker engine may end it early.
func CutFollowedLogs(x *Executor, n int64) { x.cutFollow = n }
