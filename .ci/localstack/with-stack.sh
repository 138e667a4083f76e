#!/usr/bin/env bash
# with-stack.sh CMD [ARGS...] — runs CMD with DynamoDB Local and fauxqs up
# (installed on first use), and stops them afterwards, whatever CMD does.
# The AWS_* variables stack.sh exports point the SDK (and the tests) at them.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/stack.sh"
stack_install
stack_start
trap stack_stop EXIT
"$@"
