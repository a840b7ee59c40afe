package chat

import (
	"cmp"
	"context"
	"crypto/ecdh"
	"crypto/rand"
	"encoding/base64"
	"net"
	"net/netip"
	"net/url"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/dreamseed/messenger"
	"github.com/dreamseed/messenger/auth"
	"github.com/dreamseed/messenger/ratelimit"
	"github.com/dreamseed/messenger/store"
)

// PushTicketTTL is the longest a push ticket lives (the database refuses longer): enough
// for the small window it opens to load and for the user to tap "allow".
const PushTicketTTL = 5 * time.Minute

// MaxPushEndpoint bounds a subscription's endpoint URL (push services give ~200 bytes).
const MaxPushEndpoint = 2048

// PushSubscription is a browser's PushSubscription as it serialises it (toJSON).
type PushSubscription struct {
	Endpoint string `json:"endpoint"`
	Keys     struct {
		P256DH string `json:"p256dh"`
		Auth   string `json:"auth"`
	} `json:"keys"`
}

// IssuePushTicket answers a new one-time ticket for me, live for ttl (at most
// PushTicketTTL): it lets a top-level window that has no session cookie (the iframe's is
// partitioned) subscribe this browser for me. Only its SHA-256 is stored.
func (s *Service) IssuePushTicket(ctx context.Context, me messenger.User, ttl time.Duration) (string, error) {
	if err := s.allow(ctx, ratelimit.PushTicket, me); err != nil {
		return "", err
	}
	if ttl <= 0 || ttl > PushTicketTTL {
		ttl = PushTicketTTL
	}
	var raw [32]byte
	rand.Read(raw[:])
	ticket := base64.RawURLEncoding.EncodeToString(raw[:])
	err := s.db.InTx(ctx, me.Identity(), func(tx *store.Tx) error {
		return tx.CreatePushTicket(ctx, auth.HashToken(ticket), ttl)
	})
	return ticket, err
}

// RedeemPushTicket uses ticket once and answers whom it was issued to; a forged, used or
// expired one is unauthorized.
func (s *Service) RedeemPushTicket(ctx context.Context, ticket string) (messenger.Identity, error) {
	if ticket == "" || len(ticket) > 100 {
		return messenger.Identity{}, messenger.Errorf(messenger.EUNAUTHORIZED, "error.ticket.expired")
	}
	return s.db.RedeemPushTicket(ctx, auth.HashToken(ticket))
}

// SubscribePush stores sub as one of the user's devices (named after its browser) and
// answers its id. The endpoint must be an https URL on the default port of a public host:
// the push sender will make requests to it. allowPrivate (tests, development) lets http and
// loopback or private addresses through; the sender checks the resolved address again.
// The user keeps their newest maxDevices subscriptions: one more drops the oldest, so one
// account cannot make every push fan out to endless endpoints.
func (s *Service) SubscribePush(ctx context.Context, id messenger.Identity, sub PushSubscription, browser string, allowPrivate bool, maxDevices int) (string, error) {
	if err := ValidPushEndpoint(sub.Endpoint, allowPrivate); err != nil {
		return "", err
	}
	p256dh, err := pushKey(sub.Keys.P256DH, 65)
	if err == nil {
		_, err = ecdh.P256().NewPublicKey(p256dh)
	}
	if err != nil {
		return "", messenger.Errorf(messenger.EINVALID, "error.push.p256dh_key")
	}
	if _, err := pushKey(sub.Keys.Auth, 16); err != nil {
		return "", messenger.Errorf(messenger.EINVALID, "error.push.auth_key")
	}
	var saved string
	err = s.db.InTx(ctx, id, func(tx *store.Tx) error {
		var err error
		saved, err = tx.SavePushSubscription(ctx, uuid.NewString(), sub.Endpoint,
			strings.TrimRight(sub.Keys.P256DH, "="), strings.TrimRight(sub.Keys.Auth, "="), browser)
		if err != nil {
			return err
		}
		return tx.KeepNewestPushDevices(ctx, maxDevices)
	})
	return saved, err
}

// PushDevices answers me's subscribed devices, the newest first.
func (s *Service) PushDevices(ctx context.Context, me messenger.User) ([]messenger.PushDevice, error) {
	out, err := store.InTxValue(ctx, s.db, me.Identity(), func(tx *store.Tx) ([]messenger.PushDevice, error) {
		return tx.PushDevices(ctx)
	})
	return out, err
}

// RemovePushDevice deletes one of me's subscriptions: that browser gets no more pushes.
func (s *Service) RemovePushDevice(ctx context.Context, me messenger.User, id string) error {
	if uuid.Validate(id) != nil {
		return messenger.Errorf(messenger.ENOTFOUND, "error.device.not_found")
	}
	return s.db.InTx(ctx, me.Identity(), func(tx *store.Tx) error {
		return tx.DeletePushSubscription(ctx, id)
	})
}

// pushKey decodes a base64url key (padded or not) of exactly n bytes.
func pushKey(s string, n int) ([]byte, error) {
	b, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(s, "="))
	if err != nil || len(b) != n {
		return nil, messenger.Errorf(messenger.EINVALID, "error.push.key")
	}
	return b, nil
}

// ValidPushEndpoint checks the shape of a subscription's endpoint when it is stored: https,
// a host name or a public address, the default port, no credentials. Names that only mean
// this machine or the local network (localhost, *.local, *.internal) are refused; a public
// name that resolves to a private address is caught by the sender at dial time.
func ValidPushEndpoint(endpoint string, allowPrivate bool) error {
	bad := func(why string) error {
		return messenger.Errorf(messenger.EINVALID, "error.push.endpoint", why)
	}
	if endpoint == "" {
		return bad("is missing")
	}
	if len(endpoint) > MaxPushEndpoint {
		return bad("is too long")
	}
	u, err := url.Parse(endpoint)
	if err != nil || u.Host == "" || u.Opaque != "" {
		return bad("is not a URL")
	}
	if u.User != nil || u.Fragment != "" || strings.ContainsAny(endpoint, " \t\r\n\\") {
		return bad("is not a plain URL")
	}
	if allowPrivate && (u.Scheme == "http" || u.Scheme == "https") {
		return nil
	}
	if u.Scheme != "https" {
		return bad("must be https")
	}
	if u.Port() != "" && u.Port() != "443" {
		return bad("must use the default port")
	}
	host := strings.ToLower(strings.TrimSuffix(u.Hostname(), "."))
	if ip, err := netip.ParseAddr(host); err == nil {
		if !publicAddr(ip) {
			return bad("points at a private address")
		}
		return nil
	}
	if !strings.Contains(host, ".") || host == "localhost" || net.ParseIP(host) != nil {
		return bad("points at a private address")
	}
	for _, suffix := range []string{".localhost", ".local", ".internal", ".lan", ".home.arpa", ".arpa"} {
		if strings.HasSuffix(host, suffix) {
			return bad("points at a private address")
		}
	}
	return nil
}

// publicAddr reports whether ip is an address on the public internet.
func publicAddr(ip netip.Addr) bool {
	ip = ip.Unmap()
	if ip.IsLoopback() || ip.IsPrivate() || ip.IsLinkLocalUnicast() || ip.IsLinkLocalMulticast() ||
		ip.IsMulticast() || ip.IsUnspecified() || ip.IsInterfaceLocalMulticast() {
		return false
	}
	for _, p := range []netip.Prefix{
		netip.MustParsePrefix("100.64.0.0/10"), // carrier-grade NAT
		netip.MustParsePrefix("0.0.0.0/8"),
		netip.MustParsePrefix("192.0.0.0/24"),
		netip.MustParsePrefix("198.18.0.0/15"),
		netip.MustParsePrefix("240.0.0.0/4"),
		netip.MustParsePrefix("64:ff9b::/96"), // NAT64 can reach anything IPv4
	} {
		if p.Contains(ip) {
			return false
		}
	}
	return true
}

// BrowserName names the browser of a User-Agent for the device list ("Chrome · Android").
func BrowserName(ua string) string {
	browser := cmp.Or(uaName(ua, browserNames), "Browser")
	if os := uaName(ua, systemNames); os != "" {
		return browser + " · " + os
	}
	return browser
}

// A uaMark names what a User-Agent holding any of marks runs.
type uaMark struct {
	name  string
	marks []string
}

// browserNames and systemNames are in the order they are tried: the first that matches
// names it (Samsung Internet, Edge, Whale and Opera carry Chrome's mark too, Chrome
// carries Safari's; an Android carries Linux's).
var (
	browserNames = []uaMark{
		{"Samsung Internet", []string{"SamsungBrowser/"}},
		{"Edge", []string{"Edg/", "EdgA/", "EdgiOS/"}},
		{"Whale", []string{"Whale/"}},
		{"Opera", []string{"OPR/"}},
		{"Firefox", []string{"Firefox/", "FxiOS/"}},
		{"Chrome", []string{"CriOS/", "Chrome/", "Chromium/"}},
		{"Safari", []string{"Safari/"}},
	}
	systemNames = []uaMark{
		{"iPhone", []string{"iPhone"}},
		{"iPad", []string{"iPad"}},
		{"Android", []string{"Android"}},
		{"Windows", []string{"Windows"}},
		{"Mac", []string{"Mac OS X", "Macintosh"}},
		{"ChromeOS", []string{"CrOS"}},
		{"Linux", []string{"Linux"}},
	}
)

// uaName answers the name of the first of names whose mark ua holds, or "".
func uaName(ua string, names []uaMark) string {
	for _, n := range names {
		for _, m := range n.marks {
			if strings.Contains(ua, m) {
				return n.name
			}
		}
	}
	return ""
}
