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
	var page rawPage
	size := 0
	after := start
	var last T
	for {
		remaining := limit - len(page.items)
		n := min(remaining, pageChunk)
		if len(page.items) > 0 {
			// Read on as many as are likely to fit: one more read for a
			// page of small items, a few for one of large ones.
			avg := size / len(page.items)
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
			if len(page.items) > 0 && size+len(b) > MaxPageBytes {
				page.write(w, encodeCursor(pos(last)))
				return nil
			}
			page.items, size, last = append(page.items, b), size+len(b), it
		}
		switch {
		case len(items) <= n: // the listing ends here
			page.write(w, "")
			return nil
		case len(page.items) == limit:
			page.write(w, encodeCursor(pos(last)))
			return nil
		}
		p := pos(last)
		after = &p
	}
}

// rawPage is a Page of items encoded once, as they were measured.
type rawPage struct{ items [][]byte }

// write answers the page as a Page (JSON) with nextCursor ("": none).
func (p rawPage) write(w http.ResponseWriter, nextCursor string) {
	n := 32 + len(nextCursor)
	for _, b := range p.items {
		n += len(b) + 1
	}
	out := make([]byte, 0, n)
	out = append(out, `{"items":[`...)
	for i, b := range p.items {
		if i > 0 {
			out = append(out, ',')
		}
		out = append(out, b...)
	}
	out = append(out, ']')
	if nextCursor != "" {
		c, _ := json.Marshal(nextCursor) // base64url: nothing to escape
		out = append(append(out, `,"nextCursor":`...), c...)
	}
	writeBytes(w, http.StatusOK, "application/json", append(out, '}'))
}
