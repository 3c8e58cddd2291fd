package api

import (
	"testing"

	"github.com/skiffml/skiff/store"
)

// FuzzAgentProposal: an agent's proposal body never panics the decoder or
// the check; a rejection is a 4xx *Error; an accepted command names the
// token's node, and a registration carries no API URL.
func FuzzAgentProposal(f *testing.F) {
	f.Add([]byte(`{"commands":[{"register":{"node":{"id":"gpu-1","executors":["local"],"labels":{"gpu":"true"}},"epoch":1,"time":"2026-01-01T00:00:00Z"}}]}`))
	f.Add([]byte(`{"commands":[{"heartbeat":{"node_id":"gpu-1","epoch":3,"time":"2026-01-01T00:00:00Z"}},{"report":{"execution_id":"r/0/1","node_id":"gpu-2","epoch":1}}]}`))
	f.Add([]byte(`{"commands":[{"register":{"node":{"id":"gpu-1","api_url":"http://x"}},"heartbeat":{}}]}`))
	f.Add([]byte(`{"commands":[{"report":{"node_id":"gpu-1","exit":{"outcome":"succeeded","outputs":{"m":{"artifact":{"digest":"x"}}}}}}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var in AgentProposal
		if err := decodeJSONBytes(data, &in); err != nil {
			if e, ok := err.(*Error); !ok || e.HTTPStatus() < 400 || e.HTTPStatus() >= 500 {
				t.Fatalf("decode error %T %v", err, err)
			}
			return
		}
		for _, c := range in.Commands {
			cmd, err := checkAgentCommand(c, "gpu-1")
			if err != nil {
				if e, ok := err.(*Error); !ok || e.HTTPStatus() < 400 || e.HTTPStatus() >= 500 {
					t.Fatalf("check error %T %v", err, err)
				}
				continue
			}
			switch x := cmd.(type) {
			case store.RegisterNode:
				if x.Node.ID != "gpu-1" || x.Node.APIURL != "" {
					t.Fatalf("accepted %+v", x)
				}
			case store.Heartbeat:
				if x.NodeID != "gpu-1" {
					t.Fatalf("accepted %+v", x)
				}
			case store.ReportExecution:
				if x.NodeID != "gpu-1" {
					t.Fatalf("accepted %+v", x)
				}
			default:
				t.Fatalf("accepted a %T", cmd)
			}
		}
	})
}
