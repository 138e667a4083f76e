// Command stream-function is the projector and the dispatcher on the events
// table's stream (template.yaml: StreamFunction), reporting the first
// failing record and those after it.
package main

import "github.com/workflowd/workflowd/functions"

func main() {
	functions.Run("stream-function", func(f *functions.Functions) any { return f.Stream })
}
