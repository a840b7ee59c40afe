#!/usr/bin/env bash
# Drill: disk full (docs/runbook.md#disk-full). Fills the filesystem that holds the file
# storage and checks what the runbook says: an upload is refused with a JSON error, text
# messages are still stored, nothing half-written stays in the storage, and once there is
# room again uploads are taken.
#
#   MESSENGER_URL       the messenger process
#   DRILL_FILES_DIR     its file storage directory (MESSENGER_DATA_DIR/files), on a
#                       filesystem the drill may fill: a small one of its own (a loop image
#                       or tmpfs with size=), never the one PostgreSQL or the system lives on
source "$(dirname "$0")/lib.sh"
need MESSENGER_URL DRILL_FILES_DIR
[ -d "$DRILL_FILES_DIR" ] || fail "$DRILL_FILES_DIR is not a directory"

# upload NAME: the sender uploads a 256 KiB text file to CONV; sets STATUS and BODY.
upload() {
  local f="$DRILL_TMP/$1" out="$DRILL_TMP/upload-answer" w
  head -c 262144 /dev/zero | tr '\0' 'x' >"$f"
  w=$(curl -s -o "$out" -w '%{http_code}' -m 30 -H "Authorization: Bearer $SENDER" -H 'Accept: application/json' \
    -F "file=@$f;type=text/plain" -F "client_msg_id=$(cat /proc/sys/kernel/random/uuid)" \
    "$MESSENGER_URL/api/v1/conversations/$CONV/files" || true)
  STATUS=$w
  BODY=$(cat "$out" 2>/dev/null || true)
}

# listing: every file under the storage but the filler, for the before/after comparison.
listing() { find "$DRILL_FILES_DIR" -type f ! -name drill-filler | sort; }

users
upload before.txt
[ "$STATUS" = 202 ] || fail "an upload with room answered $STATUS $BODY"

filler="$DRILL_FILES_DIR/drill-filler"
cleanup() { rm -f "$filler"; }
at_exit cleanup
say "filling $(df -h --output=target "$DRILL_FILES_DIR" | tail -n1) ($(df -h --output=avail "$DRILL_FILES_DIR" | tail -n1 | tr -d ' ') free)"
dd if=/dev/zero of="$filler" bs=64k status=none 2>/dev/null || true
[ "$(df --output=avail "$DRILL_FILES_DIR" | tail -n1 | tr -d ' ')" -lt 300 ] || fail "the filesystem of $DRILL_FILES_DIR did not fill"
before=$(listing)

upload full.txt
code=$(error_code)
case "$STATUS" in
2*) fail "an upload to a full disk answered $STATUS $BODY" ;;
esac
[ -n "$code" ] || fail "an upload to a full disk answered $STATUS without a JSON error code: $BODY"
say "an upload to the full disk: $STATUS $code $(printf '%s' "$BODY" | grep -o '"message":"[^"]*"' | head -n1)"
[ "$(listing)" = "$before" ] || fail "the refused upload left files behind: $(comm -13 <(echo "$before") <(listing))"
say "nothing of the refused upload stays in $DRILL_FILES_DIR"

must_send "text still works on a full disk"
say "a text message is stored: seq $SEQ"

rm -f "$filler"
upload after.txt
[ "$STATUS" = 202 ] || fail "an upload once there is room again answered $STATUS $BODY"
say "once there is room again an upload is taken: $STATUS"
say "PASS"
