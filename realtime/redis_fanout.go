package realtime

import (
	"strings"
)

// One event for many channels goes to Redis once, not once a channel: a message to a
// group of 500 would otherwise be 500 PUBLISHes, which Redis writes to the subscribing
// processes one by one and each process reads and decodes one by one (the publish cost
// grew by about 50 µs a recipient). From fanoutMin channels on, the publication's
// history script (or, for channels without history, the engine itself) PUBLISHes one
// message on the fan-out channel that every process subscribes to at start: the event
// once, with the list of channels (and each one's ID). On a cluster the same holds for
// each bucket (redis_cluster.go) the publication touches: a fan-out channel a bucket.
// Each process decodes it once and
// hands it to its own subscribers of those channels, as Centrifugo's nodes do with a
// broadcast. Every process reads every fan-out message, its users' or not: one message
// a group send, against one a member before.
//
// The order of a channel's events holds: a process reads its one pubsub connection in
// the order Redis published, whichever channel an event came on.

// fanoutChannel is the engine's pubsub channel (under the prefix) of events for many
// channels at once.
const fanoutChannel = "engine:fanout"

// fanoutMin is the number of channels from which a publication is fanned out by the
// processes rather than published on each channel: below it (a direct conversation's
// two members, a few of one user's tabs) a process reads only its own users' events.
const fanoutMin = 8

// fanoutName is the pub/sub channel of the fan-out messages of bucket b: one on a
// single Redis, one a bucket on a cluster (each shard's connection holds its own).
func (r *Redis) fanoutName(b int) string {
	if !r.cluster {
		return r.prefix + fanoutChannel
	}
	return r.prefix + bucketTag(b) + fanoutChannel
}

// fanoutPayload is the fan-out message of payload (an encoded event, as published) to
// channels: a first line for the epoch (empty: the event is delivered as it is), a line
// a channel's pub/sub name (with its stream entry id after a space when the epoch is
// set), an empty line, the event.
func (r *Redis) fanoutPayload(channels []string, payload []byte) string {
	var b strings.Builder
	for _, c := range channels {
		b.WriteByte('\n')
		b.WriteString(r.pubsubName(c))
	}
	b.WriteString("\n\n")
	b.Write(payload)
	return b.String()
}

// dispatchFanout hands a fan-out message's event to this process's subscribers of its
// channels, each with its own ID when the message has an epoch.
func (r *Redis) dispatchFanout(payload string) {
	head, body, ok := strings.Cut(payload, "\n\n")
	if !ok {
		r.log.Warn("realtime: dropping a malformed fan-out message", "bytes", len(payload))
		return
	}
	ev, origin, err := decodeEvent(body)
	if err != nil {
		r.log.Warn("realtime: dropping an undecodable fan-out event", "err", err)
		return
	}
	ev.Value = r.values.get(origin)
	epoch, lines, _ := strings.Cut(head, "\n")
	for lines != "" {
		var line string
		line, lines, _ = strings.Cut(lines, "\n")
		name, sid, _ := strings.Cut(line, " ")
		channel, ok := r.channelOf(name)
		if !ok || channel == "" {
			continue
		}
		e := ev
		if epoch != "" && sid != "" {
			e.ID = epoch + "-" + sid
		}
		_ = r.hub.publish(channel, e)
	}
}
