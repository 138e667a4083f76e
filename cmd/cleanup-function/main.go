// Command cleanup-function is the cleanup worker, run every minute by an
// EventBridge schedule (template.yaml: CleanupFunction).
package main

import "github.com/workflowd/workflowd/functions"

func main() {
	functions.Run("cleanup-function", func(f *functions.Functions) any { return f.Cleanup })
}
