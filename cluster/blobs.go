package cluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/skiffml/skiff/store"
	"github.com/skiffml/skiff/store/blob"
)

// BlobsConfig configures the replicated blob store.
type BlobsConfig struct {
	// MaxBlobBytes bounds the stored size of one blob a node takes in.
	MaxBlobBytes int64
	// IdleTimeout ends a transfer that moves no byte for this long.
	IdleTimeout time.Duration
	// DialTimeout bounds connecting to another node.
	DialTimeout time.Duration
	// RepairInterval is how often the node looks for blobs it should hold
	// and lacks (0: never; RepairOnce does one pass).
	RepairInterval time.Duration
	// Registerer takes the metrics (nil: not exported).
	Registerer prometheus.Registerer
	Logger     *slog.Logger
	// Now is the clock of the commands' times (nil: time.Now).
	Now func() time.Time
}

// DefaultBlobsConfig returns a BlobsConfig with the defaults.
func DefaultBlobsConfig() BlobsConfig {
	return BlobsConfig{MaxBlobBytes: blob.DefaultMaxEntrySize, IdleTimeout: 30 * time.Second,
		DialTimeout: 5 * time.Second, RepairInterval: 10 * time.Second}
}

// Validate reports the first invalid field.
func (c BlobsConfig) Validate() error {
	switch {
	case c.MaxBlobBytes <= 0:
		return fmt.Errorf("%w: MaxBlobBytes: must be positive", ErrInvalidConfig)
	case c.IdleTimeout <= 0:
		return fmt.Errorf("%w: IdleTimeout: must be positive", ErrInvalidConfig)
	case c.DialTimeout <= 0:
		return fmt.Errorf("%w: DialTimeout: must be positive", ErrInvalidConfig)
	case c.RepairInterval < 0:
		return fmt.Errorf("%w: RepairInterval: must not be negative", ErrInvalidConfig)
	}
	return nil
}

// BlobStatus is a node's replication figure, shown by skiff cluster status.
type BlobStatus struct {
	// Pending are the blobs this node should hold (recorded as its, or
	// held by fewer than a majority of voters) and lacks, at the last
	// repair pass.
	Pending int `json:"pending"`
	// Repaired counts the blobs repair fetched since the node started.
	Repaired int64 `json:"repaired"`
	// BytesSent and BytesReceived count stored bytes moved since start.
	BytesSent     int64     `json:"bytes_sent"`
	BytesReceived int64     `json:"bytes_received"`
	LastRepair    time.Time `json:"last_repair,omitzero"`
	LastError     string    `json:"last_error,omitempty"`
}

// Blobs is a node's part of the replicated blob store: it serves its
// blobs to the other nodes, pushes a worker's outputs until a majority of
// voters hold them (Replicate), fetches a blob it lacks from a node that
// holds it (the local store's Fetcher), and repairs what it should hold.
// Which nodes hold a blob is recorded in the store (store.RecordHolders).
type Blobs struct {
	cfg   BlobsConfig
	n     *Node
	local *blob.Store
	log   *slog.Logger
	now   func() time.Time
	m     *blobMetrics

	mu       sync.Mutex
	status   BlobStatus
	fetching map[string]*fetchCall // by digest: one fetch at a time
}

type fetchCall struct {
	done chan struct{}
	err  error
}

// NewBlobs returns node n's replicated blob store over its local store.
// It makes local fetch missing blobs from the other nodes; call Serve to
// answer the other nodes and start repairs.
func NewBlobs(cfg BlobsConfig, n *Node, local *blob.Store) (*Blobs, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if n.mux == nil {
		return nil, fmt.Errorf("%w: the replicated blob store needs a cluster port", ErrInvalidConfig)
	}
	m, err := newBlobMetrics(cfg.Registerer)
	if err != nil {
		return nil, err
	}
	b := &Blobs{cfg: cfg, n: n, local: local, log: cfg.Logger, now: cfg.Now, m: m, fetching: map[string]*fetchCall{}}
	if b.log == nil {
		b.log = n.log
	}
	if b.now == nil {
		b.now = time.Now
	}
	local.SetFetcher(b.Fetch)
	n.mu.Lock()
	n.blobs = b
	n.mu.Unlock()
	return b, nil
}

// Status returns the node's replication figure.
func (b *Blobs) Status() BlobStatus {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.status
}

// Serve answers the other nodes' transfers and repairs in the background
// until ctx ends or the cluster port closes.
func (b *Blobs) Serve(ctx context.Context) {
	go func() {
		for {
			select {
			case conn := <-b.n.mux.blobCh:
				go b.serveConn(ctx, conn)
			case <-b.n.mux.closed:
				return
			case <-ctx.Done():
				return
			}
		}
	}()
	if b.cfg.RepairInterval > 0 {
		go func() {
			t := time.NewTicker(b.cfg.RepairInterval)
			defer t.Stop()
			for {
				b.RepairOnce(ctx)
				select {
				case <-ctx.Done():
					return
				case <-b.n.mux.closed:
					return
				case <-t.C:
				}
			}
		}()
	}
}

func (b *Blobs) serveConn(ctx context.Context, conn net.Conn) {
	defer conn.Close()
	c := idleConn{Conn: conn, idle: b.cfg.IdleTimeout}
	req, err := decodeBlobRequest(c, b.cfg.MaxBlobBytes)
	if err != nil {
		_ = writeFrame(c, blobReply{Error: err.Error()})
		return
	}
	switch req.Op {
	case blobGet:
		rc, size, err := b.local.OpenStored(ctx, req.Digest)
		if err != nil {
			_ = writeFrame(c, blobReply{Error: err.Error()})
			return
		}
		defer rc.Close()
		if err := writeFrame(c, blobReply{Size: size}); err != nil {
			return
		}
		n, _ := io.Copy(c, rc)
		b.sent(n)
	case blobPut:
		if b.local.Has(req.Digest) && b.touch(ctx, req.Digest) == nil {
			// Touched: a collection running now spares it (it is young)
			// until the report that refers to it commits.
			_ = writeFrame(c, blobReply{Have: true})
			return
		}
		if err := writeFrame(c, blobReply{Send: true}); err != nil {
			return
		}
		n, err := b.local.PutStored(ctx, req.Digest, exactly(c, req.Size), req.Size)
		b.received(n)
		reply := blobReply{}
		if err != nil {
			reply.Error = err.Error()
		}
		_ = writeFrame(c, reply)
	}
}

// touch marks a local blob as written now (gc spares young blobs).
func (b *Blobs) touch(ctx context.Context, digest string) error {
	t, ok := b.local.Backend().(blob.Toucher)
	if !ok {
		return errors.New("the local store cannot touch a blob")
	}
	h, err := blob.ParseDigest(digest)
	if err != nil {
		return err
	}
	return t.Touch(ctx, h)
}

// Dropped records that this node no longer holds digests (garbage
// collection deleted them): gc.Config.Dropped.
func (b *Blobs) Dropped(ctx context.Context, digests []string) error {
	for len(digests) > 0 {
		chunk := digests[:min(len(digests), 1024)]
		digests = digests[len(chunk):]
		if err := b.propose(ctx, store.RecordHolders{NodeID: b.n.ID(), Drop: chunk, Time: b.now().UTC()}); err != nil {
			return err
		}
	}
	return nil
}

func (b *Blobs) sent(n int64) {
	b.m.bytes.WithLabelValues("sent").Add(float64(n))
	b.mu.Lock()
	b.status.BytesSent += n
	b.mu.Unlock()
}

func (b *Blobs) received(n int64) {
	b.m.bytes.WithLabelValues("received").Add(float64(n))
	b.mu.Lock()
	b.status.BytesReceived += n
	b.mu.Unlock()
}

// dial opens a blob transfer to the node at addr.
func (b *Blobs) dial(addr string) (net.Conn, error) {
	conn, err := b.n.mux.dial(addr, connBlob, b.cfg.DialTimeout)
	if err != nil {
		return nil, fmt.Errorf("cluster: blob transfer to %s: %w", addr, err)
	}
	return idleConn{Conn: conn, idle: b.cfg.IdleTimeout}, nil
}

// closeOnDone closes conn when ctx ends first (stop returns when done).
func closeOnDone(ctx context.Context, conn net.Conn) (stop func() bool) {
	return context.AfterFunc(ctx, func() { conn.Close() })
}

// get fetches digest from the node at addr into the local store.
func (b *Blobs) get(ctx context.Context, addr, digest string) error {
	conn, err := b.dial(addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	defer closeOnDone(ctx, conn)()
	if err := writeFrame(conn, blobRequest{Op: blobGet, Digest: digest}); err != nil {
		return fmt.Errorf("cluster: get %s from %s: %w", digest, addr, err)
	}
	var rep blobReply
	if err := readFrame(conn, &rep); err != nil {
		return fmt.Errorf("cluster: get %s from %s: %w", digest, addr, err)
	}
	if rep.Error != "" {
		return fmt.Errorf("%w: get %s from %s: %s", ErrRPC, digest, addr, rep.Error)
	}
	if rep.Size <= 0 || rep.Size > b.cfg.MaxBlobBytes {
		return fmt.Errorf("cluster: get %s from %s: size %d, want 1 to %d bytes", digest, addr, rep.Size, b.cfg.MaxBlobBytes)
	}
	n, err := b.local.PutStored(ctx, digest, exactly(conn, rep.Size), rep.Size)
	b.received(n)
	if err != nil {
		return fmt.Errorf("cluster: get %s from %s: %w", digest, addr, err)
	}
	return nil
}

// put pushes the local blob digest to the node at addr (nothing moves
// when that node has it already).
func (b *Blobs) put(ctx context.Context, addr, digest string) error {
	rc, size, err := b.local.OpenStored(ctx, digest)
	if err != nil {
		return err
	}
	defer rc.Close()
	conn, err := b.dial(addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	defer closeOnDone(ctx, conn)()
	fail := func(err error) error { return fmt.Errorf("cluster: put %s to %s: %w", digest, addr, err) }
	if err := writeFrame(conn, blobRequest{Op: blobPut, Digest: digest, Size: size}); err != nil {
		return fail(err)
	}
	var rep blobReply
	if err := readFrame(conn, &rep); err != nil {
		return fail(err)
	}
	switch {
	case rep.Error != "":
		return fmt.Errorf("%w: put %s to %s: %s", ErrRPC, digest, addr, rep.Error)
	case rep.Have:
		return nil
	case !rep.Send:
		return fail(errors.New("the receiver neither has nor wants the blob"))
	}
	n, err := io.Copy(conn, rc)
	b.sent(n)
	if err != nil {
		return fail(err)
	}
	if n != size {
		return fail(fmt.Errorf("sent %d bytes of %d", n, size))
	}
	if err := readFrame(conn, &rep); err != nil {
		return fail(err)
	}
	if rep.Error != "" {
		return fmt.Errorf("%w: put %s to %s: %s", ErrRPC, digest, addr, rep.Error)
	}
	return nil
}

// peers returns the members other than this node, the voters' ids, and
// the raft address of each member by id.
func (b *Blobs) peers() (others []store.Member, voters []string, err error) {
	ms, err := b.n.st.Members()
	if err != nil {
		return nil, nil, err
	}
	for _, m := range ms {
		if m.Voter {
			voters = append(voters, m.ID)
		}
		if m.ID != b.n.ID() {
			others = append(others, m)
		}
	}
	return others, voters, nil
}

// Fetch makes the blob with digest present here: it asks the nodes
// recorded as holding it first, then the other members, and keeps the
// first copy that verifies. One fetch of a digest runs at a time; callers
// that ask meanwhile wait for it. No node having it is ErrNotFound.
func (b *Blobs) Fetch(ctx context.Context, digest string) error {
	if _, err := blob.ParseDigest(digest); err != nil {
		return err
	}
	b.mu.Lock()
	if fc := b.fetching[digest]; fc != nil {
		b.mu.Unlock()
		select {
		case <-fc.done:
			return fc.err
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	fc := &fetchCall{done: make(chan struct{})}
	b.fetching[digest] = fc
	b.mu.Unlock()
	fc.err = b.fetch(ctx, digest)
	b.mu.Lock()
	delete(b.fetching, digest)
	b.mu.Unlock()
	close(fc.done)
	return fc.err
}

func (b *Blobs) fetch(ctx context.Context, digest string) error {
	if b.local.Has(digest) {
		return nil
	}
	others, _, err := b.peers()
	if err != nil {
		return err
	}
	holders, err := b.n.st.Holders(digest)
	if err != nil {
		return err
	}
	// Holders first (in their recorded order), then everyone else: a
	// record may lag behind a push.
	slices.SortStableFunc(others, func(x, y store.Member) int {
		return boolRank(!slices.Contains(holders, x.ID)) - boolRank(!slices.Contains(holders, y.ID))
	})
	var errs []error
	for _, m := range others {
		err := b.get(ctx, m.RaftAddr, digest)
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		errs = append(errs, err)
	}
	return fmt.Errorf("%w: %s: no other node gave it (%v)", blob.ErrNotFound, digest, errors.Join(errs...))
}

func boolRank(v bool) int {
	if v {
		return 1
	}
	return 0
}

// quorum is the number of holders among voters a blob needs.
func quorum(voters []string) int { return len(voters)/2 + 1 }

// Replicate pushes the local blobs digests to other voters until a
// majority of voters hold each (this node counts when it is one), then
// records the holders through the leader. It returns only when that is
// committed: a worker reports an execution succeeded after it (invariant
// 2). The empty blob is everywhere and never moves.
//
// A try that finds too few voters to take a blob (one restarting, a
// transfer cut) is tried again, with a growing pause, until ctx ends;
// the last try's error is returned then.
func (b *Blobs) Replicate(ctx context.Context, digests []string) error {
	backoff := 100 * time.Millisecond
	for {
		err := b.replicateOnce(ctx, digests)
		if err == nil || errors.Is(err, blob.ErrNotFound) {
			return err
		}
		b.log.Warn("cluster: blobs not replicated yet; trying again", "err", err, "in", backoff)
		select {
		case <-ctx.Done():
			return err
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

func (b *Blobs) replicateOnce(ctx context.Context, digests []string) error {
	others, voters, err := b.peers()
	if err != nil {
		return err
	}
	added := map[string][]string{} // node id -> digests it now holds
	self := b.n.ID()
	for _, d := range uniq(digests) {
		if d == blob.EmptyDigest {
			continue
		}
		if !b.local.Has(d) {
			return fmt.Errorf("cluster: replicate %s: %w", d, blob.ErrNotFound)
		}
		added[self] = append(added[self], d)
		holders, err := b.n.st.Holders(d)
		if err != nil {
			return err
		}
		have := 0
		for _, v := range voters {
			if v == self || slices.Contains(holders, v) {
				have++
			}
		}
		var targets []store.Member
		for _, m := range others {
			if m.Voter && !slices.Contains(holders, m.ID) {
				targets = append(targets, m)
			}
		}
		got, err := b.pushUntil(ctx, d, targets, quorum(voters)-have)
		if err != nil {
			return err
		}
		for _, id := range got {
			added[id] = append(added[id], d)
		}
	}
	if len(added) == 0 {
		return nil
	}
	now := b.now().UTC()
	var cmds []store.Command
	for _, id := range slices.Sorted(maps.Keys(added)) {
		cmds = append(cmds, store.RecordHolders{NodeID: id, Add: added[id], Time: now})
	}
	return b.propose(ctx, cmds...)
}

// propose commits cmds through the leader, trying again while leadership
// moves (until ctx ends); a rejection is final.
func (b *Blobs) propose(ctx context.Context, cmds ...store.Command) error {
	backoff := 20 * time.Millisecond
	for {
		res, err := b.n.ProposeWorker(ctx, cmds...)
		if err == nil {
			if len(res.Rejected) > 0 {
				return fmt.Errorf("cluster: record holders: refused: %s", res.Rejected[0].Reason)
			}
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("cluster: record holders: %w", errors.Join(err, ctx.Err()))
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, time.Second)
	}
}

func uniq(ds []string) []string {
	out := slices.Clone(ds)
	slices.Sort(out)
	return slices.Compact(out)
}

// pushUntil pushes digest to targets, need at a time in parallel, going
// on to the next target when one fails, until need of them hold it; it
// returns their ids.
func (b *Blobs) pushUntil(ctx context.Context, digest string, targets []store.Member, need int) ([]string, error) {
	var got []string
	var errs []error
	for need > len(got) {
		if len(targets) == 0 {
			return nil, fmt.Errorf("cluster: replicate %s: %d more voter(s) must hold it and none is left to take it: %w",
				digest, need-len(got), errors.Join(errs...))
		}
		k := min(need-len(got), len(targets))
		batch := targets[:k]
		targets = targets[k:]
		res := make([]error, k)
		var wg sync.WaitGroup
		for i, m := range batch {
			wg.Add(1)
			go func() {
				defer wg.Done()
				res[i] = b.put(ctx, m.RaftAddr, digest)
			}()
		}
		wg.Wait()
		for i, err := range res {
			if err == nil {
				got = append(got, batch[i].ID)
			} else {
				errs = append(errs, err)
			}
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
	}
	return got, nil
}

// RepairOnce is one repair pass: it fetches every blob the state refers
// to that this node should hold and lacks — those recorded as its own (a node that lost its disk),
// and, on a voter, those held by fewer than a majority of voters that are
// not declared down (a holder left or died) — and records itself as the holder of those it was not
// recorded for (a copy it has already, fetched for a read, counts).
func (b *Blobs) RepairOnce(ctx context.Context) BlobStatus {
	want, err := b.wanted()
	b.setPending(len(want), err)
	var record []string
	for i, w := range want {
		if ctx.Err() != nil {
			break
		}
		if !b.local.Has(w.digest) {
			if err := b.Fetch(ctx, w.digest); err != nil {
				b.log.Warn("cluster: blob repair", "digest", w.digest, "err", err)
				b.setPending(len(want)-i, err)
				continue
			}
			b.m.repaired.Inc()
			b.mu.Lock()
			b.status.Repaired++
			b.mu.Unlock()
		}
		if !w.mine {
			record = append(record, w.digest)
		}
		b.setPending(len(want)-i-1, nil)
	}
	for len(record) > 0 && ctx.Err() == nil {
		chunk := record[:min(len(record), 1024)]
		record = record[len(chunk):]
		if err := b.propose(ctx, store.RecordHolders{NodeID: b.n.ID(), Add: chunk, Time: b.now().UTC()}); err != nil {
			b.setPending(len(record)+len(chunk), err)
			break
		}
	}
	b.mu.Lock()
	b.status.LastRepair = b.now().UTC()
	defer b.mu.Unlock()
	return b.status
}

func (b *Blobs) setPending(n int, err error) {
	b.m.pending.Set(float64(n))
	b.mu.Lock()
	defer b.mu.Unlock()
	b.status.Pending = n
	if err != nil {
		b.status.LastError = err.Error()
	}
}

// wantedBlob is a blob repair acts on.
type wantedBlob struct {
	digest string
	mine   bool // recorded as held by this node
}

// wanted lists the blobs this node should hold and either lacks or is
// not recorded as holding.
func (b *Blobs) wanted() ([]wantedBlob, error) {
	_, voters, err := b.peers()
	if err != nil {
		return nil, err
	}
	self := b.n.ID()
	voter := slices.Contains(voters, self)
	q := quorum(voters)
	// A voter whose worker the leader declared down holds nothing anyone
	// can read now: its copies do not count.
	nodes, err := b.n.st.Nodes()
	if err != nil {
		return nil, err
	}
	down := map[string]bool{}
	for _, nd := range nodes {
		down[nd.ID] = nd.State == store.NodeDown
	}
	// Only what the state refers to is repaired: a blob garbage
	// collection deleted on some holders is not brought back.
	refs, err := b.n.st.BlobRefs(nil)
	if err != nil {
		return nil, err
	}
	var out []wantedBlob
	err = b.n.st.EachHeld(func(d string, holders []string) error {
		if refs[d] == "" {
			return nil
		}
		mine := slices.Contains(holders, self)
		live := 0
		for _, h := range holders {
			if slices.Contains(voters, h) && !down[h] {
				live++
			}
		}
		if mine || (voter && live < q) {
			out = append(out, wantedBlob{digest: d, mine: mine})
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	// Has stats the disk: done outside the store's read transaction.
	return slices.DeleteFunc(out, func(w wantedBlob) bool { return w.mine && b.local.Has(w.digest) }), nil
}

// blobMetrics are the replicated blob store's Prometheus metrics.
type blobMetrics struct {
	bytes    *prometheus.CounterVec
	pending  prometheus.Gauge
	repaired prometheus.Counter
}

func newBlobMetrics(reg prometheus.Registerer) (*blobMetrics, error) {
	m := &blobMetrics{
		bytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "skiff_blob_replication_bytes_total",
			Help: "Stored (compressed) blob bytes moved between nodes, by direction (sent, received).",
		}, []string{"direction"}),
		pending: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "skiff_blob_repairs_pending",
			Help: "Blobs this node should hold and lacks, at the last repair pass.",
		}),
		repaired: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "skiff_blob_repairs_total",
			Help: "Blobs this node fetched by repair.",
		}),
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.bytes, m.pending, m.repaired} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("cluster: register blob metrics: %w", err)
		}
	}
	return m, nil
}
