// Package views holds the templ components of the messenger's pages and partials, and the
// small formatting helpers they share (translations, times, avatars, links).
package views

import (
	"context"
	"fmt"
	"strings"
)

type localeKey struct{}

// WithLocale answers a context whose pages render in locale ("ko" or "en").
func WithLocale(ctx context.Context, locale string) context.Context {
	return context.WithValue(ctx, localeKey{}, locale)
}

// Locale answers the locale pages render in; Korean unless English was chosen.
func Locale(ctx context.Context) string {
	if l, _ := ctx.Value(localeKey{}).(string); l == "en" {
		return "en"
	}
	return "ko"
}

// NegotiateLocale picks the page locale: the user's own (from the portal) if set, else the
// first of Korean or English the browser's Accept-Language names, else Korean.
func NegotiateLocale(userLocale, acceptLanguage string) string {
	if userLocale == "ko" || userLocale == "en" {
		return userLocale
	}
	for _, part := range strings.Split(acceptLanguage, ",") {
		tag, _, _ := strings.Cut(strings.TrimSpace(part), ";")
		lang, _, _ := strings.Cut(strings.ToLower(tag), "-")
		switch lang {
		case "ko":
			return "ko"
		case "en":
			return "en"
		}
	}
	return "ko"
}

// T answers the text of key in the context's locale.
func T(ctx context.Context, key string) string {
	m, ok := messages[key]
	if !ok {
		return key
	}
	if Locale(ctx) == "en" {
		return m.en
	}
	return m.ko
}

// Tf answers the text of key in the context's locale with args filled in.
func Tf(ctx context.Context, key string, args ...any) string {
	return fmt.Sprintf(T(ctx, key), args...)
}

type text struct{ ko, en string }

var messages = map[string]text{
	"app.name":                   {"DreamSeed 메신저", "DreamSeed Messenger"},
	"nav.conversations":          {"대화 목록", "Conversations"},
	"nav.back":                   {"대화 목록으로", "Back to conversations"},
	"list.empty.title":           {"아직 대화가 없습니다", "No conversations yet"},
	"list.empty.body":            {"선생님, 친구, 학부모님과 대화를 시작해 보세요.", "Start a conversation with a teacher, classmate or parent."},
	"list.no_messages":           {"아직 메시지가 없습니다", "No messages yet"},
	"list.unread":                {"읽지 않은 메시지", "unread messages"},
	"list.more":                  {"더 보기", "Load more"},
	"list.muted":                 {"알림 꺼짐", "Muted"},
	"me.settings":                {"알림 설정", "Notification settings"},
	"settings.title":             {"알림 설정", "Notification settings"},
	"settings.saved":             {"저장했습니다.", "Saved."},
	"settings.alerts":            {"알림 받기", "Alerts"},
	"settings.push":              {"푸시 알림", "Push notifications"},
	"settings.push.sub":          {"대화를 보고 있지 않을 때 내 기기로 알려 드립니다.", "When you are away, your devices are told of new messages."},
	"settings.email":             {"이메일 요약", "Email digest"},
	"settings.email.sub":         {"오래 접속하지 않으면 읽지 않은 메시지를 이메일로 모아 보내 드립니다.", "When you have been away a while, unread messages come to you in one email."},
	"settings.quiet":             {"알림 꺼짐 시간", "Quiet hours"},
	"settings.quiet.sub":         {"이 시간에는 푸시 알림을 보내지 않고, 끝나면 한 번에 알려 드립니다.", "No push in these hours; you are told when they end."},
	"settings.quiet.default":     {"학교 기본값", "School default"},
	"settings.quiet.none":        {"없음", "none"},
	"settings.quiet.off":         {"사용 안 함", "Off"},
	"settings.quiet.custom":      {"직접 정하기", "Custom"},
	"settings.quiet.from":        {"시작", "From"},
	"settings.quiet.to":          {"끝", "To"},
	"settings.quiet.invalid":     {"알림 꺼짐 시간은 서로 다른 두 시각(시:분)으로 정해 주세요.", "Quiet hours are two different times (HH:MM)."},
	"settings.zone":              {"시간대", "Time zone"},
	"settings.zone.invalid":      {"알 수 없는 시간대입니다. Asia/Seoul 같은 이름을 써 주세요.", "Unknown time zone: use a name such as Asia/Seoul."},
	"settings.per_conversation":  {"대화별 알림 끄기와 키워드 알림은 각 대화 위쪽의 종 모양 버튼에서 정합니다.", "Mute and keyword alerts for one conversation are under the bell at the top of that conversation."},
	"settings.save":              {"저장", "Save"},
	"settings.devices":           {"이 기기와 내 기기", "This device and my devices"},
	"settings.devices.none":      {"푸시 알림을 받는 기기가 아직 없습니다.", "No device receives push notifications yet."},
	"mute.menu":                  {"알림 설정", "Notification settings"},
	"mute.title":                 {"이 대화 알림 끄기", "Mute this conversation"},
	"mute.1h":                    {"1시간", "1 hour"},
	"mute.8h":                    {"8시간", "8 hours"},
	"mute.forever":               {"다시 켤 때까지", "Until I turn it back on"},
	"mute.off":                   {"알림 다시 켜기", "Unmute"},
	"mute.state.forever":         {"알림 꺼짐 · 다시 켤 때까지", "Muted until you turn it back on"},
	"mute.state.until":           {"알림 꺼짐 · %s까지", "Muted until %s"},
	"mute.invalid":               {"알림 끄기는 1시간, 8시간, 다시 켤 때까지 중에서 고르세요.", "Mute for 1 hour, 8 hours or until you turn it back on."},
	"keywords.title":             {"키워드 알림", "Keyword alerts"},
	"keywords.sub":               {"적으면 이 단어가 들어간 메시지만 알려 드립니다. 한 줄에 하나, 최대 %d개, 각 %d자까지.", "If set, only messages with one of these words notify you. One a line, at most %d, each up to %d characters."},
	"keywords.placeholder":       {"예: 현장학습", "e.g. field trip"},
	"keywords.save":              {"키워드 저장", "Save keywords"},
	"keywords.too_many":          {"키워드는 최대 %d개까지 저장할 수 있습니다.", "At most %d keywords."},
	"keywords.too_long":          {"키워드 하나는 최대 %d자입니다.", "A keyword has at most %d characters."},
	"keywords.invalid":           {"키워드에는 보이는 글자만 한 줄로 써 주세요.", "A keyword is one line of visible characters."},
	"quiet.notice.teacher":       {"선생님은 알림 꺼짐 시간입니다 (%s에 알림)", "The teacher is in quiet hours (notified at %s)"},
	"quiet.notice":               {"%s님은 알림 꺼짐 시간입니다 (%s에 알림)", "%s is in quiet hours (notified at %s)"},
	"thread.placeholder":         {"대화를 선택하세요", "Select a conversation"},
	"thread.placeholder.sub":     {"왼쪽 목록에서 대화를 열면 여기에 메시지가 표시됩니다.", "Open a conversation from the list to see its messages here."},
	"thread.empty":               {"첫 메시지를 보내 보세요.", "Send the first message."},
	"thread.members":             {"명", " members"},
	"thread.history":             {"이전 메시지", "Earlier messages"},
	"composer.label":             {"메시지 입력", "Message"},
	"composer.placeholder":       {"메시지를 입력하세요", "Type a message"},
	"new.title":                  {"새 대화", "New conversation"},
	"new.search":                 {"이름으로 찾기", "Search by name"},
	"new.people":                 {"대화 상대", "People"},
	"new.hint":                   {"한 명을 고르면 1:1 대화, 여러 명을 고르면 그룹 대화가 시작됩니다.", "Pick one person for a 1:1 conversation, or several for a group."},
	"new.group_title":            {"그룹 이름 (선택)", "Group name (optional)"},
	"new.start":                  {"대화 시작", "Start conversation"},
	"new.nobody":                 {"찾는 사람이 없습니다.", "Nobody matches."},
	"read.count":                 {"%d명이 읽음", "Read by %d"},
	"read.read":                  {"읽음", "Read"},
	"read.sent":                  {"전송됨", "Sent"},
	"presence.online":            {"온라인", "Online"},
	"typing.one":                 {"%s님이 입력 중...", "%s is typing..."},
	"typing.two":                 {"%s님, %s님이 입력 중...", "%s and %s are typing..."},
	"typing.many":                {"%s님 외 %d명이 입력 중...", "%s and %d others are typing..."},
	"members.title":              {"대화 상대", "Members"},
	"members.me":                 {"나", "me"},
	"members.admin":              {"방장", "admin"},
	"composer.send":              {"전송", "Send"},
	"composer.retry":             {"다시 보내기", "Retry"},
	"composer.empty":             {"메시지를 입력하세요.", "Type a message first."},
	"composer.too_long":          {"메시지는 4,000자까지 보낼 수 있습니다.", "A message can be at most 4,000 characters."},
	"composer.failed":            {"메시지를 보내지 못했습니다.", "The message was not sent."},
	"composer.rate_limited":      {"메시지를 너무 빨리 보내고 있습니다. 잠시 후 다시 시도하세요.", "You are sending messages too quickly. Wait a moment and try again."},
	"thread.new_messages":        {"새 메시지 ↓", "New messages ↓"},
	"thread.leave":               {"나가기", "Leave"},
	"thread.leave.confirm":       {"이 대화방에서 나갈까요?", "Leave this conversation?"},
	"conn.lost":                  {"연결이 끊겼습니다 — 다시 연결 중...", "Connection lost — reconnecting..."},
	"conn.back":                  {"다시 연결되었습니다", "Reconnected"},
	"kind.group":                 {"그룹", "Group"},
	"kind.announcement":          {"공지", "Announcements"},
	"system":                     {"알림", "Notice"},
	"time.yesterday":             {"어제", "Yesterday"},
	"me.signout":                 {"로그아웃", "Sign out"},
	"me.signout_all":             {"모든 기기에서 로그아웃", "Sign out everywhere"},
	"me.menu":                    {"내 계정", "My account"},
	"role.admin":                 {"관리자", "Admin"},
	"role.teacher":               {"선생님", "Teacher"},
	"role.student":               {"학생", "Student"},
	"role.parent":                {"학부모", "Parent"},
	"role.staff":                 {"교직원", "Staff"},
	"dev.title":                  {"개발용 로그인", "Developer sign-in"},
	"dev.intro":                  {"데모 사용자를 골라 로그인하세요. 개발 모드에서만 보이는 화면입니다.", "Pick a demo user to sign in as. This page exists only in development mode."},
	"dev.org":                    {"기관", "Organization"},
	"dev.signin":                 {"로그인", "Sign in"},
	"error.title":                {"문제가 생겼습니다", "Something went wrong"},
	"error.home":                 {"대화 목록으로 돌아가기", "Back to conversations"},
	"error.not_found":            {"찾을 수 없습니다", "Not found"},
	"error.unauthorized":         {"로그인이 필요합니다", "Please sign in"},
	"error.unauthorized.sub":     {"DreamSeed 포털에서 메신저를 다시 열어 주세요.", "Open the messenger again from the DreamSeed portal."},
	"announcement.title":         {"학교 공지", "Announcements"},
	"announcement.sub":           {"우리 학교 모두가 받는 공지", "Notices for everyone in your school"},
	"announcement.readonly":      {"공지 채널입니다. 선생님과 관리자만 글을 쓸 수 있습니다.", "This is an announcement channel. Only teachers and administrators can post."},
	"members.invite":             {"초대하기", "Invite"},
	"members.make_admin":         {"방장으로 지정", "Make admin"},
	"members.unmake_admin":       {"방장 해제", "Remove as admin"},
	"members.remove":             {"내보내기", "Remove"},
	"members.remove.confirm":     {"%s님을 이 그룹에서 내보낼까요?", "Remove %s from this group?"},
	"members.actions":            {"%s님 관리", "Manage %s"},
	"members.rename":             {"그룹 이름", "Group name"},
	"members.rename.save":        {"저장", "Save"},
	"members.audit":              {"변경 기록", "Audit log"},
	"members.count":              {"대화 상대 %d명", "%d members"},
	"invite.title":               {"대화 상대 초대", "Invite people"},
	"invite.submit":              {"초대하기", "Invite"},
	"invite.member":              {"참여 중", "Member"},
	"thread.removed":             {"이 그룹에서 내보내졌습니다.", "You were removed from this group."},
	"thread.removed.sub":         {"더 이상 이 대화의 메시지를 볼 수 없습니다.", "You can no longer see this conversation's messages."},
	"audit.title":                {"변경 기록", "Audit log"},
	"audit.actor":                {"%s님이", "%s"},
	"audit.when":                 {"시각", "When"},
	"audit.who":                  {"누가", "Who"},
	"audit.what":                 {"무엇을", "What"},
	"audit.request":              {"요청 ID", "Request ID"},
	"audit.empty":                {"기록이 없습니다.", "Nothing recorded yet."},
	"audit.created":              {"그룹 '%s'을(를) 만들었습니다", "created the group '%s'"},
	"audit.created.direct":       {"1:1 대화를 시작했습니다", "started the 1:1 conversation"},
	"audit.invited":              {"%s님을 초대했습니다", "invited %s"},
	"audit.removed":              {"%s님을 내보냈습니다", "removed %s"},
	"audit.left":                 {"나갔습니다", "left"},
	"audit.renamed":              {"이름을 '%s'에서 '%s'(으)로 바꿨습니다", "renamed the group from '%s' to '%s'"},
	"audit.role.admin":           {"%s님을 방장으로 지정했습니다", "made %s an admin"},
	"audit.role.member":          {"%s님의 방장 권한을 해제했습니다", "removed %s as admin"},
	"audit.role.admin.auto":      {"나가면서 %s님이 방장이 되었습니다", "left, so %s became admin"},
	"audit.role.member.auto":     {"%s님의 방장 권한이 해제되었습니다", "%s is no longer admin"},
	"audit.zone_joined":          {"학교 공지를 받기 시작했습니다", "joined the announcements"},
	"audit.zone_left":            {"다른 학교(구역)로 옮겨 공지에서 빠졌습니다", "moved to another zone and left the announcements"},
	"audit.announcement":         {"공지를 올렸습니다 (#%s)", "posted announcement #%s"},
	"error.forbidden":            {"권한이 없습니다", "Not allowed"},
	"error.too_large":            {"보낸 내용이 너무 큽니다", "What you sent is too large"},
	"error.unsupported":          {"이 형식은 받을 수 없습니다", "This kind of content is not accepted here"},
	"error.too_large.sub":        {"내용을 줄여서 다시 보내 주세요.", "Please shorten it and send it again."},
	"error.unsupported.sub":      {"페이지를 새로 고친 뒤 다시 시도해 주세요.", "Reload the page and try again."},
	"error.rate_limited":         {"요청이 너무 많습니다", "Too many requests"},
	"error.rate_limited.sub":     {"잠시 후 다시 시도하세요.", "Wait a moment and try again."},
	"stream.replaced":            {"이 창의 실시간 연결이 다른 창으로 옮겨졌습니다.", "Live updates moved to another window."},
	"stream.reconnect":           {"이 창에서 다시 연결", "Reconnect here"},
	"stream.session_replaced":    {"이 브라우저에서 다시 로그인되었습니다. 새로 고침하면 이어서 쓸 수 있습니다.", "You signed in again in this browser. Reload to carry on."},
	"stream.reload":              {"새로 고침", "Reload"},
	"stream.signed_out":          {"로그아웃되었습니다", "You are signed out"},
	"stream.expired":             {"로그인 시간이 끝났습니다", "Your sign-in has expired"},
	"stream.signed_out.sub":      {"이 창의 로그인이 끝나 더 이상 새 메시지를 받지 않습니다.", "This window's sign-in has ended; it no longer receives new messages."},
	"stream.signin":              {"다시 로그인", "Sign in again"},
	"composer.invalid":           {"메시지에 보낼 수 없는 문자(제어 문자 또는 겹친 결합 문자)가 있습니다.", "The message holds characters that cannot be sent (control characters or stacked combining marks)."},
	"file.deleted":               {"삭제된 파일입니다", "This file was deleted"},
	"file.preview.photo":         {"사진", "Photo"},
	"file.preview.photos":        {"사진 %d장", "%d photos"},
	"file.preview.file":          {"파일: %s", "File: %s"},
	"file.preview.files":         {"파일 %d개", "%d files"},
	"file.preview.file_plain":    {"파일", "File"},
	"file.unscanned":             {"검사 안 됨", "Not scanned"},
	"file.open_photo":            {"사진 크게 보기: %s", "Open photo: %s"},
	"file.download":              {"다운로드", "Download"},
	"file.download_named":        {"%s 다운로드", "Download %s"},
	"file.menu":                  {"메시지 메뉴", "Message menu"},
	"file.delete":                {"삭제", "Delete"},
	"file.delete.confirm":        {"이 파일을 삭제할까요? 대화 상대에게도 보이지 않게 됩니다.", "Delete this file? It will disappear for everyone in the conversation."},
	"file.delete.failed":         {"파일을 삭제하지 못했습니다. 다시 시도해 주세요.", "The file could not be deleted. Try again."},
	"upload.scanning":            {"안전한 파일인지 검사 중…", "Scanning for viruses…"},
	"upload.infected":            {"안전하지 않은 파일이 있어 보내지 않고 삭제했습니다.", "A file looked unsafe, so it was deleted and not sent."},
	"upload.failed_scan":         {"파일을 보내지 못했습니다. 다시 첨부해 주세요.", "The files could not be sent. Please attach them again."},
	"upload.dismiss":             {"닫기", "Dismiss"},
	"upload.sending":             {"보내는 중…", "Sending…"},
	"upload.cancel":              {"취소", "Cancel"},
	"upload.retry":               {"다시 보내기", "Retry"},
	"upload.failed":              {"파일을 보내지 못했습니다.", "The files were not sent."},
	"upload.too_large":           {"파일이 너무 크거나 사진의 화소 수가 너무 많습니다. 파일은 %s까지 보낼 수 있습니다.", "A file is too large, or a photo has too many pixels. Files can be up to %s."},
	"upload.unsupported":         {"보낼 수 없는 형식의 파일입니다. 사진(JPG, PNG, WebP, GIF), PDF, 워드·엑셀·파워포인트, 한글(HWP/HWPX), 텍스트 파일을 보낼 수 있습니다.", "This kind of file cannot be sent. You can send photos (JPG, PNG, WebP, GIF), PDF, Word, Excel, PowerPoint, Hangul (HWP/HWPX) and text files."},
	"upload.invalid":             {"파일을 받을 수 없습니다. 손상된 파일이거나, 이름에 쓸 수 없는 문자가 있거나, 한 번에 보낼 수 있는 개수를 넘었습니다.", "The files could not be accepted: a file is damaged, a name holds characters that cannot be used, or there are too many files."},
	"upload.forbidden":           {"이 대화에는 파일을 보낼 수 없습니다.", "You cannot send files to this conversation."},
	"attach.label":               {"파일 첨부", "Attach files"},
	"attach.tray":                {"보낼 파일", "Files to send"},
	"attach.remove":              {"%s 빼기", "Remove %s"},
	"attach.too_large":           {"%s: 파일이 너무 큽니다. %s까지 보낼 수 있습니다.", "%s is too large. Files can be up to %s."},
	"attach.type":                {"%s: 보낼 수 없는 형식입니다.", "%s: this kind of file cannot be sent."},
	"attach.heic":                {"%s: HEIC 사진은 아직 보낼 수 없습니다. JPG로 저장해서 보내 주세요.", "%s: HEIC photos cannot be sent yet. Save it as JPG and try again."},
	"attach.too_many":            {"한 번에 %s개까지 보낼 수 있습니다.", "You can send up to %s files at once."},
	"attach.empty":               {"%s: 빈 파일입니다.", "%s is empty."},
	"attach.drop":                {"여기에 놓으면 첨부됩니다", "Drop files to attach"},
	"attach.drop.sub":            {"사진, PDF, 문서 파일", "Photos, PDFs and documents"},
	"attach.nojs":                {"파일", "Files"},
	"attach.nojs.send":           {"파일 보내기", "Send files"},
	"viewer.title":               {"사진 보기", "Photo viewer"},
	"viewer.close":               {"닫기", "Close"},
	"viewer.download":            {"원본 다운로드", "Download original"},
	"viewer.prev":                {"이전 사진", "Previous photo"},
	"viewer.next":                {"다음 사진", "Next photo"},
	"viewer.counter":             {"%d / %d", "%d of %d"},
	"upload.choose":              {"보낼 파일을 고르세요.", "Choose the files to send."},
	"push.title":                 {"알림 설정", "Notification settings"},
	"push.this_device":           {"이 기기에서 알림 받기", "Notifications on this device"},
	"push.intro":                 {"메신저를 보고 있지 않을 때 새 메시지를 알려 드립니다.", "Get told about new messages when the messenger is not open."},
	"push.enable":                {"알림 켜기", "Turn on notifications"},
	"push.enabled":               {"이 기기에서 알림이 켜져 있습니다.", "Notifications are on for this device."},
	"push.working":               {"알림을 켜는 중…", "Turning on notifications…"},
	"push.denied":                {"알림이 차단되어 있습니다. 브라우저의 사이트 설정에서 알림을 허용한 뒤 다시 눌러 주세요.", "Notifications are blocked. Allow them in the browser's site settings, then try again."},
	"push.failed":                {"알림을 켜지 못했습니다. 잠시 후 다시 시도해 주세요.", "Notifications could not be turned on. Please try again in a moment."},
	"push.popup_blocked":         {"새 창이 차단되었습니다. 이 사이트의 팝업을 허용한 뒤 다시 눌러 주세요.", "The new window was blocked. Allow pop-ups for this site, then try again."},
	"push.unsupported":           {"이 브라우저에서는 알림을 받을 수 없습니다.", "This browser cannot receive notifications."},
	"push.needs_js":              {"알림을 켜려면 자바스크립트가 필요합니다.", "Turning on notifications needs JavaScript."},
	"push.devices":               {"알림을 받는 기기", "Devices that get notifications"},
	"push.devices.none":          {"아직 알림을 받는 기기가 없습니다.", "No device gets notifications yet."},
	"push.device.this":           {"이 기기", "This device"},
	"push.device.unknown":        {"알 수 없는 브라우저", "Unknown browser"},
	"push.device.added":          {"%s 추가됨", "Added %s"},
	"push.device.last_used":      {"마지막 알림 %s", "Last notified %s"},
	"push.device.remove":         {"삭제", "Remove"},
	"push.device.remove_label":   {"%s 기기 삭제", "Remove %s"},
	"push.device.removed":        {"기기를 삭제했습니다. 이 기기에는 더 이상 알림이 가지 않습니다.", "The device was removed: it gets no more notifications."},
	"push.ios.title":             {"iPhone·iPad에서 알림 받기", "Notifications on iPhone and iPad"},
	"push.ios.intro":             {"iPhone과 iPad에서는 메신저를 홈 화면에 추가해야 알림을 받을 수 있습니다.", "On iPhone and iPad, notifications need the messenger on the Home Screen."},
	"push.ios.step1":             {"Safari에서 메신저를 엽니다.", "Open the messenger in Safari."},
	"push.ios.step2":             {"아래쪽의 공유 버튼(네모에 위쪽 화살표)을 누릅니다.", "Tap the Share button (a square with an arrow pointing up)."},
	"push.ios.step3":             {"‘홈 화면에 추가’를 누르고 ‘추가’를 누릅니다.", "Tap “Add to Home Screen”, then “Add”."},
	"push.ios.step4":             {"홈 화면의 DreamSeed 아이콘으로 메신저를 열고 ‘알림 켜기’를 누릅니다.", "Open the messenger from the DreamSeed icon on the Home Screen and tap “Turn on notifications”."},
	"push.ios.version":           {"iOS 16.4 이상이 필요합니다(설정 › 일반 › 정보에서 확인).", "iOS 16.4 or later is needed (see Settings › General › About)."},
	"push.enable_page.title":     {"DreamSeed 메신저 알림", "DreamSeed Messenger notifications"},
	"push.enable_page.intro":     {"아래 버튼을 누른 뒤, 브라우저가 알림을 허용할지 물으면 ‘허용’을 눌러 주세요.", "Tap the button below, then choose “Allow” when the browser asks about notifications."},
	"push.enable_page.done":      {"알림이 켜졌습니다. 이 창은 닫아도 됩니다.", "Notifications are on. You can close this window."},
	"push.enable_page.no_ticket": {"이 창은 메신저 설정의 ‘알림 켜기’로 열어 주세요.", "Open this window with “Turn on notifications” in the messenger's settings."},
	"push.enable_page.expired":   {"시간이 지났습니다. 메신저 설정에서 ‘알림 켜기’를 다시 눌러 주세요.", "This window has expired. Tap “Turn on notifications” in the messenger's settings again."},
	"push.sw.app":                {"DreamSeed 메신저", "DreamSeed Messenger"},
	"push.sw.several":            {"새 메시지 {n}개", "{n} new messages"},
	"manifest.name":              {"DreamSeed 메신저", "DreamSeed Messenger"},
	"manifest.short_name":        {"드림시드", "DreamSeed"},
	"manifest.description":       {"학교와 가정을 잇는 DreamSeed 메신저", "DreamSeed Messenger, between school and home"},
	"digest.subject":             {"[DreamSeed] 새로운 메시지가 도착했습니다", "[DreamSeed] You have new messages"},
	"digest.greeting":            {"%s님, 읽지 않은 메시지가 있습니다.", "%s, you have unread messages."},
	"digest.unread":              {"읽지 않은 메시지 %d개", "%d unread"},
	"digest.open":                {"대화 열기", "Open conversation"},
	"digest.more":                {"다른 대화 %d개에도 새 메시지가 있습니다.", "%d more conversations have new messages."},
	"digest.why":                 {"DreamSeed 메신저에 접속하지 않은 동안 도착한 메시지를 알려 드립니다.", "We tell you about messages that arrived while you were away from DreamSeed Messenger."},
	"digest.unsubscribe":         {"이메일 알림 받지 않기", "Stop email notifications"},
	"unsubscribe.title":          {"이메일 알림 끄기", "Turn off email notifications"},
	"unsubscribe.confirm":        {"DreamSeed 메신저의 이메일 알림을 더 이상 받지 않으시겠습니까?", "Stop receiving email notifications from DreamSeed Messenger?"},
	"unsubscribe.button":         {"이메일 알림 끄기", "Turn off email"},
	"unsubscribe.done":           {"이메일 알림을 껐습니다. 설정에서 다시 켤 수 있습니다.", "Email notifications are off. You can turn them on again in settings."},
	"unsubscribe.invalid":        {"이 링크는 유효하지 않거나 만료되었거나 이미 사용되었습니다.", "This link is invalid, expired or already used."},
}
