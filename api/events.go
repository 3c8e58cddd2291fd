package api

import (
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/skiffml/skiff/engine"
	"github.com/skiffml/skiff/store"
)

// Event is one change of a run or task, as the event stream sends it.
type Event struct {
	RunID     string `json:"run_id"`
	Task      string `json:"task,omitempty"`       // task name; "" for a run change
	TaskIndex *int   `json:"task_index,omitempty"` // nil for a run change
	State     string `json:"state"`
	Attempt   int    `json:"attempt,omitempty"`
	Reason    string `json:"reason,omitempty"`
	Time      string `json:"time"`
}

// Events fans engine updates out to subscribers (the SSE stream). Slow
// subscribers lose events rather than block the engine; they are told so
// with a "lagged" event and should re-read the run.
type Events struct {
	mu   sync.Mutex
	subs map[chan Event]struct{}
}

// NewEvents returns an empty feed.
func NewEvents() *Events { return &Events{subs: map[chan Event]struct{}{}} }

// Publish is an engine.Config.OnUpdate: it never blocks.
func (e *Events) Publish(us []engine.Update) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(e.subs) == 0 {
		return
	}
	for _, u := range us {
		ev := Event{RunID: u.RunID, Attempt: u.Attempt, Reason: u.Reason, Time: u.Time.UTC().Format(time.RFC3339Nano)}
		if u.Task >= 0 {
			i := u.Task
			ev.TaskIndex, ev.Task, ev.State = &i, u.Name, u.TaskState.String()
		} else {
			ev.State = u.RunState.String()
		}
		for ch := range e.subs {
			select {
			case ch <- ev:
			default:
			}
		}
	}
}

func (e *Events) subscribe() (chan Event, func()) {
	ch := make(chan Event, 1024)
	e.mu.Lock()
	e.subs[ch] = struct{}{}
	e.mu.Unlock()
	return ch, func() {
		e.mu.Lock()
		delete(e.subs, ch)
		e.mu.Unlock()
	}
}

// streamEvents serves GET /apis/skiff/v1/events[?run_id=ID] as
// server-sent events: one "change" event per update of a run the caller
// may see, and a comment every 15 s to keep proxies from closing it.
func (s *Server) streamEvents(w http.ResponseWriter, r *http.Request, p *principal) error {
	runID := r.URL.Query().Get("run_id")
	if runID != "" {
		if _, err := s.visibleRun(runID, p); err != nil {
			return err
		}
	}
	fl, ok := w.(http.Flusher)
	if !ok {
		return apiErr(codeInternal, "streaming unsupported")
	}
	ch, unsub := s.events.subscribe()
	defer unsub()
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	_, _ = fmt.Fprint(w, ": skiff events\n\n")
	fl.Flush()
	visible := map[string]bool{}
	tick := time.NewTicker(15 * time.Second)
	defer tick.Stop()
	for {
		select {
		case <-r.Context().Done():
			return nil
		case <-tick.C:
			_, _ = fmt.Fprint(w, ": keep-alive\n\n")
		case ev := <-ch:
			if runID != "" && ev.RunID != runID {
				continue
			}
			see, known := visible[ev.RunID]
			if !known {
				run, err := s.cfg.Store.GetRun(ev.RunID)
				see = err == nil && p.sees(store.RunNamespace(run))
				visible[ev.RunID] = see
			}
			if !see {
				continue
			}
			b, _ := json.Marshal(ev)
			_, _ = fmt.Fprintf(w, "event: change\ndata: %s\n\n", b)
		}
		fl.Flush()
	}
}
