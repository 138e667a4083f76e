// Command worker-function handles the command messages of both SQS queues
// (template.yaml: WorkerFunction), reporting partial batch failures.
package main

import "github.com/workflowd/workflowd/functions"

func main() {
	functions.Run("worker-function", func(f *functions.Functions) any { return f.Worker })
}
