#!/bin/sh
# A producer in another language: plain redis-cli, enqueueing exactly as docs/redis.md
# says under "Enqueueing from another language".
#
#   ZEVENTS_REDIS_URL=redis://127.0.0.1:6379/0 sh examples/foreign_producer.sh [LIST [STREAM]]
#
# Puts one orders.created message on the list queue LIST (default "orders") and one on
# the stream queue STREAM (default "orders-stream"), both at priority 0 under the
# default key prefix "zevents:", and prints their ids. A zevents worker then handles
# them like its own (open a queue only this script wrote with its driver named:
# RedisQueue("orders-stream", driver="stream")).
set -eu

url=${ZEVENTS_REDIS_URL:?set ZEVENTS_REDIS_URL to the redis:// URL of the queues}
list_queue=${1:-orders}
stream_queue=${2:-orders-stream}

cli() {
    redis-cli -u "$url" "$@"
}

# enqueued_at: Unix milliseconds of the Redis clock, as zevents' own send scripts write.
set -- $(cli TIME)
now_ms=$(( $1 * 1000 + $2 / 1000 ))

# list: the body in the msgs hash and the id at the tail of the ready list, in one
# MULTI/EXEC (both or neither). Commands go on redis-cli's stdin, one connection.
list_id="sh-$now_ms-$$-1"
list_body="{\"event\":\"orders.created\",\"payload\":{\"id\":101,\"by\":\"redis-cli\"},\"priority\":0,\"enqueued_at\":$now_ms}"
reply=$(printf '%s\n' MULTI \
    "HSET 'zevents:{$list_queue}:msgs' '$list_id' '$list_body'" \
    "RPUSH 'zevents:{$list_queue}:ready:0' '$list_id'" \
    EXEC | cli)
case $reply in
    *ERR* | *WRONGTYPE*)
        echo "list enqueue failed: $reply" >&2
        exit 1
        ;;
esac

# stream: one XADD of the id (i) and the body (m).
stream_id="sh-$now_ms-$$-2"
stream_body="{\"event\":\"orders.created\",\"payload\":{\"id\":102,\"by\":\"redis-cli\"},\"priority\":0,\"enqueued_at\":$now_ms}"
cli XADD "zevents:{$stream_queue}:stream:0" '*' i "$stream_id" m "$stream_body" >/dev/null

echo "enqueued $list_id on $list_queue and $stream_id on $stream_queue"
