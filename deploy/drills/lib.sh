# Shared by the drills (sourced, not run): portal tokens, the JSON API over curl, a live
# stream read into a file, /readyz and /metrics. Needs bash, curl and openssl; no jq.
#
# Every drill takes:
#   MESSENGER_URL           a messenger process (or the proxy in front of it), e.g. http://127.0.0.1:8001
#   MESSENGER_JWT_SECRET    the portal's HS256 secret the messenger trusts (default: the dev secret)
#   DRILL_ORG               the organization the drill's users belong to (default: drill)
#   DRILL_TMP               where a drill keeps its streams and answers (default: a new mktemp -d)

set -euo pipefail

DRILL_DEV_SECRET="dreamseed-messenger-dev-secret-not-for-production"
: "${MESSENGER_JWT_SECRET:=$DRILL_DEV_SECRET}"
: "${DRILL_ORG:=drill}"
if [ -z "${DRILL_TMP:-}" ]; then
  DRILL_TMP=$(mktemp -d)
fi
DRILL_NAME=$(basename "$0" .sh)
DRILL_RUN=$(date +%s)$$ # makes the drill's users and texts unique per run

# at_exit CMD: runs CMD when the drill ends, however it ends (the last added first), so that
# a failed drill leaves Redis and PostgreSQL running and no stream open.
DRILL_AT_EXIT=()
at_exit() { DRILL_AT_EXIT=("$1" "${DRILL_AT_EXIT[@]}"); }
drill_exit() {
  local cmd
  for cmd in "${DRILL_AT_EXIT[@]}"; do
    eval "$cmd" || true
  done
}
trap drill_exit EXIT

say() { printf '%s [%s] %s\n' "$(date -u +%H:%M:%S)" "$DRILL_NAME" "$*"; }
fail() {
  say "FAIL: $*"
  say "what the drill read is in $DRILL_TMP"
  exit 1
}
need() {
  local v
  for v in "$@"; do
    [ -n "${!v:-}" ] || fail "set $v (see deploy/drills/README.md)"
  done
}

b64url() { openssl base64 -A | tr '+/' '-_' | tr -d '='; }

# token SUB NAME ROLE: a portal token for one hour, signed with MESSENGER_JWT_SECRET.
token() {
  local now header payload sig
  now=$(date +%s)
  header=$(printf '{"alg":"HS256","typ":"JWT"}' | b64url)
  payload=$(printf '{"iss":"dreamseed-portal","aud":"messenger","sub":"%s","name":"%s","org_id":"%s","role":"%s","iat":%d,"exp":%d}' \
    "$1" "$2" "$DRILL_ORG" "$3" "$now" $((now + 3600)) | b64url)
  sig=$(printf '%s.%s' "$header" "$payload" | openssl dgst -sha256 -hmac "$MESSENGER_JWT_SECRET" -binary | b64url)
  printf '%s.%s.%s' "$header" "$payload" "$sig"
}

# api TOKEN METHOD PATH [JSON] [BASE]: one request; sets STATUS, BODY, HEADERS and
# SECONDS_TAKEN. A request that gets no answer within DRILL_REQUEST_TIMEOUT (default 30 s)
# has STATUS 000.
api() {
  local tok=$1 method=$2 path=$3 data=${4:-} base=${5:-$MESSENGER_URL} out args
  out="$DRILL_TMP/answer"
  args=(-s -o "$out" -D "$out.headers" -w '%{http_code} %{time_total}' -m "${DRILL_REQUEST_TIMEOUT:-30}"
    -X "$method" -H "Authorization: Bearer $tok" -H 'Accept: application/json')
  if [ -n "$data" ]; then
    args+=(-H 'Content-Type: application/json' --data "$data")
  fi
  local w
  w=$(curl "${args[@]}" "$base$path" || true)
  STATUS=${w%% *}
  SECONDS_TAKEN=${w#* }
  BODY=$(cat "$out" 2>/dev/null || true)
  HEADERS=$(tr -d '\r' <"$out.headers" 2>/dev/null || true)
  rm -f "$out" "$out.headers"
}

# field NAME: the first number NAME has in BODY ("" when none).
field() { printf '%s' "$BODY" | grep -o "\"$1\":[0-9]*" | head -n1 | cut -d: -f2 || true; }

# error_code: the code of a JSON error answer in BODY.
error_code() { printf '%s' "$BODY" | grep -o '"code":"[a-z_]*"' | head -n1 | cut -d'"' -f4 || true; }

# users: makes a sender and a reader (both sign in once) and a direct conversation between
# them; sets SENDER, READER (tokens) and CONV.
users() {
  SENDER=$(token "drill-$DRILL_RUN-a" "Drill sender" teacher)
  READER=$(token "drill-$DRILL_RUN-b" "Drill reader" parent)
  api "$READER" GET /api/v1/me
  [ "$STATUS" = 200 ] || fail "GET /api/v1/me as the reader: $STATUS $BODY"
  api "$SENDER" POST /api/v1/conversations "{\"kind\":\"direct\",\"participant_ids\":[\"drill-$DRILL_RUN-b\"]}"
  case "$STATUS" in 200 | 201) ;; *) fail "create a conversation: $STATUS $BODY" ;; esac
  CONV=$(field id)
  say "conversation $CONV between drill-$DRILL_RUN-a and drill-$DRILL_RUN-b"
}

# send TEXT [BASE]: the sender sends TEXT to CONV; sets STATUS, BODY, SECONDS_TAKEN, SEQ
# and MSG_ID, the send's client_msg_id (DRILL_MSG_ID's when set: a client's retry).
send() {
  MSG_ID=${DRILL_MSG_ID:-$(cat /proc/sys/kernel/random/uuid)}
  api "$SENDER" POST "/api/v1/conversations/$CONV/messages" "{\"body\":\"$1\",\"client_msg_id\":\"$MSG_ID\"}" "${2:-$MESSENGER_URL}"
  SEQ=$(field seq)
}

# must_send TEXT [BASE]: send, which must answer 201.
must_send() {
  send "$@"
  [ "$STATUS" = 201 ] || fail "send \"$1\": $STATUS $BODY"
}

# history_seqs: the seqs the reader's history of CONV holds, one a line, ascending.
history_seqs() {
  local after=0 more=true
  while [ "$more" = true ]; do
    api "$READER" GET "/api/v1/conversations/$CONV/messages?after_seq=$after&limit=200"
    [ "$STATUS" = 200 ] || fail "history of $CONV: $STATUS $BODY"
    local page
    page=$(printf '%s' "$BODY" | grep -o '"conversation_id":[0-9]*,"seq":[0-9]*' | cut -d: -f3 || true)
    [ -n "$page" ] && printf '%s\n' "$page"
    more=$(printf '%s' "$BODY" | grep -o '"has_more":[a-z]*' | cut -d: -f2)
    [ -n "$page" ] && after=$(printf '%s\n' "$page" | tail -n1)
    [ -n "$page" ] || more=false
  done
}

# stream_open FILE [BASE] [LAST_EVENT_ID]: the reader's live stream, written to FILE by a
# curl in the background; sets STREAM_PID. It returns once the stream has said hello.
stream_open() {
  local file=$1 base=${2:-$MESSENGER_URL} last=${3:-}
  local args=(-sN -H "Authorization: Bearer $READER" -H 'Accept: text/event-stream')
  [ -n "$last" ] && args+=(-H "Last-Event-ID: $last")
  : >"$file"
  curl "${args[@]}" "$base/api/v1/events" >>"$file" 2>/dev/null &
  STREAM_PID=$!
  at_exit "kill $STREAM_PID 2>/dev/null"
  for _ in $(seq 100); do
    [ -s "$file" ] && return 0
    sleep 0.1
  done
  fail "the stream at $base said nothing within 10 s"
}

# stream_seqs FILE: the seqs of CONV that arrived on the stream in FILE as message.new.
stream_seqs() {
  grep -A2 '^event: message.new' "$1" | grep -o "\"conversation_id\":$CONV,\"seq\":[0-9]*" | cut -d: -f3 || true
}

# stream_last_id FILE: the id of the last event in FILE.
stream_last_id() { grep '^id: ' "$1" | tail -n1 | cut -c5- || true; }

# wait_stream_seq FILE SEQ SECONDS: waits until seq SEQ of CONV arrived on the stream.
wait_stream_seq() {
  local until=$((SECONDS + $3))
  while [ "$SECONDS" -lt "$until" ]; do
    stream_seqs "$1" | grep -qx "$2" && return 0
    sleep 0.1
  done
  stream_seqs "$1" | grep -qx "$2"
}

# wait_resyncs FILE N SECONDS: waits until the stream in FILE has more than N resync events.
wait_resyncs() {
  local until=$((SECONDS + $3))
  while [ "$(resyncs "$1")" -le "$2" ]; do
    [ "$SECONDS" -lt "$until" ] || return 1
    sleep 0.1
  done
}

# resyncs FILE: how many resync events the stream in FILE has had.
resyncs() { grep -c '^event: resync' "$1" || true; }

# readyz [BASE]: the status /readyz answers within 5 s (000: no answer).
readyz() { curl -s -o /dev/null -w '%{http_code}' -m 5 "${1:-$MESSENGER_URL}/readyz" || true; }

# wait_ready STATUS SECONDS [BASE]: waits until /readyz answers STATUS.
wait_ready() {
  local until=$((SECONDS + $2))
  while [ "$SECONDS" -lt "$until" ]; do
    [ "$(readyz "${3:-$MESSENGER_URL}")" = "$1" ] && return 0
    sleep 0.5
  done
  return 1
}

# metric NAME [METRICS_URL]: the sum of every series of NAME (0 when none).
metric() {
  curl -s -m 5 "${2:-$METRICS_URL}" | awk -v n="$1" '$1 == n || index($1, n "{") == 1 { s += $NF } END { printf "%d\n", s }'
}

# check_nothing_lost FILE: every seq of CONV's history arrived on the stream in FILE
# exactly once, or after a resync event (which a client answers by fetching the history).
check_nothing_lost() {
  local file=$1 hist streamed dups
  hist=$(history_seqs)
  streamed=$(stream_seqs "$file")
  dups=$(printf '%s\n' "$streamed" | sort -n | uniq -d)
  [ -z "$dups" ] || fail "the stream carried these seqs more than once: $(echo $dups)"
  local missing
  missing=$(comm -23 <(printf '%s\n' "$hist" | sort) <(printf '%s\n' "$streamed" | sort) | sort -n)
  if [ -n "$missing" ]; then
    grep -q '^event: resync' "$file" ||
      fail "seqs $(echo $missing) are stored but never came on the stream, and no resync told the client to fetch them"
    say "seqs $(echo $missing) came by the history fetch a resync asked for"
  fi
  local extra
  extra=$(comm -13 <(printf '%s\n' "$hist" | sort) <(printf '%s\n' "$streamed" | sort))
  [ -z "$extra" ] || fail "the stream carried seqs the database does not have: $(echo $extra)"
  say "nothing lost: $(printf '%s\n' "$hist" | grep -c .) messages stored, every one delivered once"
}
