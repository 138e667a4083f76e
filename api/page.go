package api

import (
	"encoding/json"
	"net/http"

	"github.com/workflowd/workflowd/store"
)

// MaxPageBytes bounds a listing page's items, encoded: a page holds at most
// limit items and stops before the item that would take it past this (it
// holds at least one), with a nextCursor when more follow. Executions of
// up to 320 KiB each would otherwise make a page of 1,000 of them hundreds
// of MB.
const MaxPageBytes = 4 << 20

// pageChunk is how many items one store read asks for, so that a page of
// large items reads little more than it shows.
const pageChunk = 100

// listPage reads a page of at most limit items after start from list,
// within MaxPageBytes, and writes it. pos is an item's listing position.
func listPage[T any](w http.ResponseWriter, limit int, start *store.Position, list func(store.ListQuery) ([]T, error), pos func(T) store.Position) error {
	page := Page[json.RawMessage]{Items: []json.RawMessage{}}
	size := 0
	after := start
	var last T
	for {
		remaining := limit - len(page.Items)
		n := min(remaining, pageChunk)
		if len(page.Items) > 0 {
			// Read on as many as are likely to fit: one more read for a
			// page of small items, a few for one of large ones.
			avg := size / len(page.Items)
			n = min(remaining, max(pageChunk, (MaxPageBytes-size)/max(avg, 1)))
		}
		items, err := list(store.ListQuery{Limit: n + 1, After: after}) // one more: is there a next?
		if err != nil {
			return err
		}
		for i, it := range items {
			if i == n {
				break
			}
			b, err := json.Marshal(it)
			if err != nil {
				return err
			}
			if len(page.Items) > 0 && size+len(b) > MaxPageBytes {
				page.NextCursor = encodeCursor(pos(last))
				writeJSON(w, http.StatusOK, "application/json", page)
				return nil
			}
			page.Items, size, last = append(page.Items, b), size+len(b), it
		}
		switch {
		case len(items) <= n: // the listing ends here
			writeJSON(w, http.StatusOK, "application/json", page)
			return nil
		case len(page.Items) == limit:
			page.NextCursor = encodeCursor(pos(last))
			writeJSON(w, http.StatusOK, "application/json", page)
			return nil
		}
		p := pos(last)
		after = &p
	}
}
