// Command worker-function handles the command messages of both SQS queues
// (template.yaml: WorkerFunction), reporting partial batch failures.
package main

import "github.com/workflowd/workflowd/app"

func main() {
	app.RunFunction("worker-function", func(f *app.Functions) any { return f.Worker })
}
