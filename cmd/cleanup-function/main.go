// Command cleanup-function is the cleanup worker, run every minute by an
// EventBridge schedule (template.yaml: CleanupFunction).
package main

import "github.com/workflowd/workflowd/app"

func main() {
	app.RunFunction("cleanup-function", func(f *app.Functions) any { return f.Cleanup })
}
