package chat

import (
	"context"
	"log/slog"
	"strconv"

	"github.com/dreamseed/messenger"
	"github.com/dreamseed/messenger/realtime"
	"github.com/dreamseed/messenger/store"
)

// Zone announcements: a zone's one announcement conversation, whose notices go out once
// on the zone's channel, not to each member's.

// ZoneChannel is the realtime channel of a zone's announcements: every stream of a user
// of the zone listens to it, so a notice is published once however large the zone.
func ZoneChannel(zoneID int64) string { return "zone:" + strconv.FormatInt(zoneID, 10) }

// publishAnnouncement sends a notice once, to the zone's channel. Its id is the seq, from
// which a stream resumes with the database (zone channels keep no history in the engine).
func (s *Service) publishAnnouncement(ctx context.Context, zoneID int64, m messenger.Message) {
	s.publishAll(ctx, s.appendZoneEvent(nil, zoneID, EventMessageNew, strconv.FormatInt(m.Seq, 10), m))
}

// publishAnnouncementUpdate tells the zone's streams that a notice changed in place (a
// tombstone): message.updated on the zone's channel, without an id, since a notice's id
// is its seq and the streams take numbered events for new notices. It is live only: a
// stream that was away when it went out does not get it on resuming (the zone's catch-up
// reads notices after a seq, not changes to older ones); the thread shows it when it is
// next read.
func (s *Service) publishAnnouncementUpdate(ctx context.Context, zoneID int64, m messenger.Message) {
	s.publishAll(ctx, s.appendZoneEvent(nil, zoneID, EventMessageUpdated, "", m))
}

// appendZoneEvent appends to pubs m as an event of type typ (numbered id, or none) on the
// zone's channel.
func (s *Service) appendZoneEvent(pubs []realtime.Publication, zoneID int64, typ, id string, m messenger.Message) []realtime.Publication {
	ev, err := liveEvent(typ, m, false)
	if err != nil {
		s.logger.Error("encode event", slog.String("type", typ), slog.String("error", err.Error()))
		return pubs
	}
	ev.ID = id
	return append(pubs, realtime.Publication{Channels: []string{ZoneChannel(zoneID)}, Event: ev})
}

// ZoneCatchUp answers the announcements of me's zone after seq afterSeq (at most limit,
// oldest first) and the newest seq, for a stream resuming its zone position from the
// database. Without a zone, or before the zone has announcements, it answers nothing.
func (s *Service) ZoneCatchUp(ctx context.Context, me messenger.User, afterSeq int64, limit int) (msgs []messenger.Message, lastSeq int64, err error) {
	if me.ZoneID == 0 {
		return nil, 0, nil
	}
	err = s.db.InTx(ctx, me.Identity(), func(tx *store.Tx) error {
		id, last, err := tx.ZoneAnnouncement(ctx)
		if messenger.ErrorCode(err) == messenger.ENOTFOUND {
			return nil
		}
		if err != nil {
			return err
		}
		lastSeq = last
		if afterSeq < 0 || afterSeq >= last {
			return nil
		}
		msgs, err = tx.MessagesAfter(ctx, id, afterSeq, limit)
		return err
	})
	return msgs, lastSeq, err
}
