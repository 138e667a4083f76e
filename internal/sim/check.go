package sim

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/google/uuid"

	"github.com/workflowd/workflowd/model"
)

// check tests the guarantees once the run has settled (the faults off):
//   - no answer of the API was a 5xx other than 503 (a store or bus that
//     did not answer, which a client retries);
//   - every command answered 202 ends APPLIED or REJECTED;
//   - every view equals the fold of its events;
//   - no run of a step completes twice, no execution ends twice;
//   - every execution has ended (its client completed its manual step).
//
// The http target checks, as the run goes, that no attempt has two calls
// in flight (simTransport).
func (w *world) check() {
	for _, f := range w.five00s {
		w.violate("the API answered a 5xx: %s", f)
	}
	seen := map[string]bool{}
	for _, id := range w.accepted {
		if seen[id] {
			continue
		}
		seen[id] = true
		code, body := w.call("GET", "/v1/commands/"+id, "", "")
		var st struct{ Status string }
		if code != http.StatusOK || json.Unmarshal(body, &st) != nil {
			w.violate("command %s: status read %d %s", id, code, body)
			continue
		}
		if st.Status != model.CommandApplied && st.Status != model.CommandRejected {
			w.violate("command %s answered 202 is %s at the end", id, st.Status)
		}
	}
	ctx := context.Background()
	if w.workflow != "" {
		id := uuid.MustParse(w.workflow)
		events, err := w.store.Load(ctx, model.WorkflowAggregateID(id), 0)
		fold, ferr := model.FoldWorkflow(model.Workflow{}, events)
		view, verr := w.store.GetWorkflow(ctx, id)
		if err != nil || ferr != nil || verr != nil {
			w.violate("workflow %s: load %v, fold %v, view %v", id, err, ferr, verr)
		} else if a, b := mustJSON(view), mustJSON(fold); a != b || view.Seq != fold.Seq || !slices.Equal(view.RecentCommands, fold.RecentCommands) {
			w.violate("workflow %s: the view is not the fold of its events:\nview %s\nfold %s", id, a, b)
		}
	}
	for _, c := range w.clients {
		if c.id == "" {
			w.violate("client %d never had its execution started", c.i)
			continue
		}
		id := uuid.MustParse(c.id)
		events, err := w.store.Load(ctx, model.ExecutionAggregateID(id), 0)
		if err != nil {
			w.violate("execution %s: load: %v", id, err)
			continue
		}
		fold, err := model.FoldExecution(model.Execution{}, events)
		if err != nil {
			w.violate("execution %s: fold: %v", id, err)
			continue
		}
		fold.Due, _ = fold.DueAt(15 * time.Minute)
		view, err := w.store.GetExecution(ctx, id)
		if err != nil {
			w.violate("execution %s: view: %v", id, err)
			continue
		}
		if a, b := mustJSON(view), mustJSON(fold); a != b || view.Version != fold.Version || !slices.Equal(view.RecentCommands, fold.RecentCommands) || !view.Due.Equal(fold.Due) {
			w.violate("execution %s: the view is not the fold of its events:\nview %s\nfold %s", id, a, b)
		}
		if err := model.CheckHistory(events); err != nil {
			w.violate("execution %s: %v", id, err)
		}
		if !model.IsTerminal(fold.Status) {
			w.violate("execution %s is %s at step %d at the end, not finished", id, fold.Status, fold.CurrentStep)
		}
	}
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint("unencodable: ", err)
	}
	return string(b)
}
