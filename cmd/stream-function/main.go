// Command stream-function is the projector and the dispatcher on the events
// table's stream (template.yaml: StreamFunction), reporting the first
// failing record and those after it.
package main

import "github.com/workflowd/workflowd/app"

func main() {
	app.RunFunction("stream-function", func(f *app.Functions) any { return f.Stream })
}
