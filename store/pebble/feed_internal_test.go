package pebble

import "testing"

// The watermark stays at the lowest unfinished position, whatever order
// commits finish in, and readers are woken only when it moves.
func TestFeedWatermark(t *testing.T) {
	f := feedState{next: 10, moved: make(chan struct{})}
	wantWM := func(step string, want uint64) {
		t.Helper()
		if got, _ := f.watermark(); got != want {
			t.Fatalf("%s: got watermark %d, want %d", step, got, want)
		}
	}
	wantWM("nothing allocated", 10)
	a, b, c := f.alloc(), f.alloc(), f.alloc()
	if a != 10 || b != 11 || c != 12 {
		t.Fatalf("alloc: got %d, %d, %d, want 10, 11, 12", a, b, c)
	}
	_, moved := f.watermark()
	tests := []struct {
		name   string
		finish uint64
		want   uint64
		woken  bool
	}{
		{"middle_finishes_first", b, 10, false},
		{"last_finishes", c, 10, false},
		{"lowest_finishes", a, 13, true},
		{"unknown_position", 99, 13, false},
	}
	for _, tt := range tests {
		f.finish(tt.finish)
		wantWM(tt.name, tt.want)
		select {
		case <-moved:
			if !tt.woken {
				t.Fatalf("%s: readers woken, want them left waiting", tt.name)
			}
			_, moved = f.watermark()
		default:
			if tt.woken {
				t.Fatalf("%s: readers left waiting, want them woken", tt.name)
			}
		}
	}
}
