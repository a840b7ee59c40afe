package handlers_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math"
	"net/http"
	"os"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"go.yaml.in/yaml/v3"

	"github.com/dreamseed/messenger"
	"github.com/dreamseed/messenger/handlers"
)

// apiDoc is docs/openapi.yaml, read as plain maps: the test needs its paths, operations,
// examples and schemas, and follows $refs itself.
type apiDoc struct {
	root map[string]any
}

func loadAPIDoc(t *testing.T) apiDoc {
	t.Helper()
	raw, err := os.ReadFile("../docs/openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var root map[string]any
	if err := yaml.Unmarshal(raw, &root); err != nil {
		t.Fatalf("docs/openapi.yaml: %v", err)
	}
	if v, _ := root["openapi"].(string); !strings.HasPrefix(v, "3.1") {
		t.Fatalf("docs/openapi.yaml is OpenAPI %q, want 3.1", v)
	}
	return apiDoc{root: root}
}

// resolve follows a local $ref ("#/components/schemas/User") until it reaches a node
// without one.
func (d apiDoc) resolve(t *testing.T, node map[string]any) map[string]any {
	t.Helper()
	for {
		ref, ok := node["$ref"].(string)
		if !ok {
			return node
		}
		var cur any = d.root
		for _, part := range strings.Split(strings.TrimPrefix(ref, "#/"), "/") {
			m, _ := cur.(map[string]any)
			cur = m[part]
		}
		next, ok := cur.(map[string]any)
		if !ok {
			t.Fatalf("docs/openapi.yaml: %s leads nowhere", ref)
		}
		node = next
	}
}

// apiOperation is one documented method and path.
type apiOperation struct {
	method, path string // "GET", "/api/v1/conversations/{conversation_id}"
	op           map[string]any
}

var docMethods = []string{"get", "put", "post", "delete", "patch", "head", "options"}

func (d apiDoc) operations() []apiOperation {
	var ops []apiOperation
	paths, _ := d.root["paths"].(map[string]any)
	for path, item := range paths {
		item, _ := item.(map[string]any)
		for _, m := range docMethods {
			if op, ok := item[m].(map[string]any); ok {
				ops = append(ops, apiOperation{method: strings.ToUpper(m), path: path, op: op})
			}
		}
	}
	return ops
}

// routeKey names a route by method and shape, its parameters unnamed: echo's
// "/files/:id" and the document's "/files/{file_id}" are both "/files/{}".
var echoParam, docParam = regexp.MustCompile(`:[^/]+`), regexp.MustCompile(`\{[^/}]+\}`)

func routeKey(method, path string) string {
	return method + " " + docParam.ReplaceAllString(echoParam.ReplaceAllString(path, "{}"), "{}")
}

// TestOpenAPIRoutes: docs/openapi.yaml documents every /api/v1 route the server registers,
// and nothing that it does not; every GET but the event stream also answers HEAD.
func TestOpenAPIRoutes(t *testing.T) {
	doc := loadAPIDoc(t)
	e := newEnv(t, nil)

	documented := map[string]bool{}
	for _, op := range doc.operations() {
		if documented[routeKey(op.method, op.path)] {
			t.Errorf("%s %s is documented twice", op.method, op.path)
		}
		documented[routeKey(op.method, op.path)] = true
	}
	registered, heads := map[string]bool{}, map[string]bool{}
	for _, r := range e.echo.Router().Routes() {
		if !strings.HasPrefix(r.Path, "/api/v1/") {
			continue
		}
		if r.Method == http.MethodHead {
			heads[routeKey(http.MethodGet, r.Path)] = true
			continue
		}
		registered[routeKey(r.Method, r.Path)] = true
	}
	if len(registered) == 0 {
		t.Fatal("the server registers no /api/v1 route")
	}
	for k := range registered {
		if !documented[k] {
			t.Errorf("the server has %s, which docs/openapi.yaml does not document", k)
		}
		if strings.HasPrefix(k, "GET ") && !heads[k] && k != "GET /api/v1/events" {
			t.Errorf("%s answers no HEAD, but the document says every GET does", k)
		}
	}
	for k := range documented {
		if !registered[k] {
			t.Errorf("docs/openapi.yaml documents %s, which the server does not have", k)
		}
	}
}

// openAPIFixture is what the documented calls need to exist: people, a group its caller
// administers, a message, a clean picture and a push subscription.
type openAPIFixture struct {
	params       map[string]string // path parameter values by name
	subscription []byte            // a browser's PushSubscription
}

func newOpenAPIFixture(t *testing.T, e *filesEnv) openAPIFixture {
	t.Helper()
	const org = "openapi-org"
	for _, sub := range []string{"u-1001", "u-1002", "u-1003"} {
		if resp := e.api(sub, org, http.MethodGet, "/api/v1/me"); resp.StatusCode != http.StatusOK {
			t.Fatalf("sign in %s: %d", sub, resp.StatusCode)
		}
	}
	resp := e.apiJSON("u-1001", org, http.MethodPost, "/api/v1/conversations", `{"kind":"group","title":"fixture","participant_ids":["u-1002"]}`)
	var conv messenger.APIConversation
	if resp.StatusCode != http.StatusCreated || jsonDecode(resp, &conv) != nil {
		t.Fatalf("create the fixture's group: %d", resp.StatusCode)
	}
	resp, up := e.apiUpload("u-1001", org, conv.ID, uuid.NewString(), "칠판", filePart{"칠판.png", pngFile(t, 640, 480)})
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("upload the fixture's picture: %d", resp.StatusCode)
	}
	up = e.waitUpload("u-1001", org, up.ID, messenger.UploadClean)
	// Another member writes last: the caller has something to mark read.
	resp = e.apiJSON("u-1002", org, http.MethodPost, fmt.Sprintf("/api/v1/conversations/%d/messages", conv.ID),
		fmt.Sprintf(`{"body":"첫 메시지","client_msg_id":%q}`, uuid.NewString()))
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("send the fixture's message: %d", resp.StatusCode)
	}
	sub := subscription(t, "https://fcm.googleapis.com/fcm/send/openapi", nil)
	resp = e.do(nil, http.MethodPost, "/api/v1/push/subscriptions", bytes.NewReader(sub), map[string]string{
		"Authorization": "Bearer " + sign(t, validClaims("u-1001", "u-1001", org)), "Content-Type": "application/json",
	})
	var saved struct{ ID string }
	if resp.StatusCode != http.StatusCreated || jsonDecode(resp, &saved) != nil {
		t.Fatalf("subscribe the fixture's device: %d", resp.StatusCode)
	}
	return openAPIFixture{
		params: map[string]string{
			"conversation_id": fmt.Sprint(conv.ID), "sub": "u-1002", "upload_id": up.ID,
			"file_id": up.Files[0].ID, "size": "small", "subscription_id": saved.ID,
		},
		// The same endpoint again moves the stored subscription to the caller: 201 again.
		subscription: sub,
	}
}

// apiJSON sends body as JSON with sub's portal token.
func (e *filesEnv) apiJSON(sub, org, method, path, body string) *http.Response {
	e.t.Helper()
	return e.do(nil, method, path, strings.NewReader(body), map[string]string{
		"Authorization": "Bearer " + sign(e.t, validClaims(sub, e.name(sub), org)), "Content-Type": "application/json",
	})
}

// TestOpenAPIResponses calls every documented operation on a real server, as the document
// tells a client to (its examples as bodies), and holds each answer to the document: the
// status is documented, every required field is present with its documented type, and
// no field is left undocumented.
func TestOpenAPIResponses(t *testing.T) {
	doc := loadAPIDoc(t)
	e := newFilesEnv(t, true, func(c *handlers.Config) { c.PushKeys = newPushKeys(t) })
	fx := newOpenAPIFixture(t, e)
	token := "Bearer " + sign(t, validClaims("u-1001", "u-1001", "openapi-org"))

	// The caller's and another member's live streams, to hold the events the calls cause
	// to the document too.
	streams := map[string]<-chan sseEvent{
		"the caller": e.openStream(strings.TrimPrefix(token, "Bearer "), ""),
		"a member":   e.openStream(sign(t, validClaims("u-1002", "u-1002", "openapi-org")), ""),
	}

	ops := doc.operations()
	// The read mark first, while the other member's message is unread (the caller's own
	// sends mark it read); then reads and writes, then the deletions; leaving the group goes
	// last, since every other call needs its caller in it.
	rank := func(op apiOperation) int {
		switch {
		case strings.HasSuffix(op.path, "/read"):
			return -1
		case op.method == http.MethodDelete && op.path == "/api/v1/conversations/{conversation_id}":
			return 2
		case op.method == http.MethodDelete:
			return 1
		}
		return 0
	}
	sort.SliceStable(ops, func(i, j int) bool {
		if rank(ops[i]) != rank(ops[j]) {
			return rank(ops[i]) < rank(ops[j])
		}
		return ops[i].path+ops[i].method < ops[j].path+ops[j].method
	})

	for _, op := range ops {
		name := op.method + " " + op.path
		path := docParam.ReplaceAllStringFunc(op.path, func(p string) string {
			v, ok := fx.params[strings.Trim(p, "{}")]
			if !ok {
				t.Fatalf("%s: the test has no value for %s", name, p)
			}
			return v
		})
		header := map[string]string{"Authorization": token}
		body := doc.requestBody(t, op, fx, header)
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		req, err := http.NewRequestWithContext(ctx, op.method, e.srv.URL+path, body)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := roundTrip(nil, req, header)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		doc.checkResponse(t, name, op, resp)
		resp.Body.Close()
		cancel()
	}

	events, _ := doc.operation(t, http.MethodGet, "/api/v1/events")["x-events"].(map[string]any)
	seen := map[string]bool{}
	for who, stream := range streams {
		for ev := range quietAfter(stream, 500*time.Millisecond) {
			seen[ev.typ] = true
			schema, ok := events[ev.typ].(map[string]any)
			if !ok {
				t.Errorf("%s's stream carries %s, which docs/openapi.yaml does not document", who, ev.typ)
				continue
			}
			if ev.id == "" && ev.typ != "message.typing" && ev.typ != "presence" {
				t.Errorf("%s's stream carries %s without an id", who, ev.typ)
			}
			var v any
			if err := json.Unmarshal([]byte(ev.data), &v); err != nil {
				t.Errorf("%s's %s: data %q is not JSON", who, ev.typ, ev.data)
				continue
			}
			for _, p := range doc.check(t, "", schema, v) {
				t.Errorf("%s's %s: %s", who, ev.typ, p)
			}
		}
	}
	for _, typ := range []string{"message.new", "message.updated", "upload.updated", "message.read_receipt", "message.typing", "conversation.updated"} {
		if !seen[typ] {
			t.Errorf("the calls caused no %s on the streams", typ)
		}
	}
}

// quietAfter answers the events of stream until it has been quiet for quiet.
func quietAfter(stream <-chan sseEvent, quiet time.Duration) <-chan sseEvent {
	out := make(chan sseEvent)
	go func() {
		defer close(out)
		for {
			select {
			case ev, ok := <-stream:
				if !ok {
					return
				}
				out <- ev
			case <-time.After(quiet):
				return
			}
		}
	}()
	return out
}

// operation answers the document's operation of method and path.
func (d apiDoc) operation(t *testing.T, method, path string) map[string]any {
	t.Helper()
	paths, _ := d.root["paths"].(map[string]any)
	item, _ := paths[path].(map[string]any)
	op, ok := item[strings.ToLower(method)].(map[string]any)
	if !ok {
		t.Fatalf("docs/openapi.yaml has no %s %s", method, path)
	}
	return op
}

// requestBody answers the body the document tells a client to send: its JSON example,
// a picture for a multipart upload, a browser's subscription for web push.
func (d apiDoc) requestBody(t *testing.T, op apiOperation, fx openAPIFixture, header map[string]string) io.Reader {
	t.Helper()
	rb, ok := op.op["requestBody"].(map[string]any)
	if !ok {
		return nil
	}
	content, _ := d.resolve(t, rb)["content"].(map[string]any)
	switch {
	case content["multipart/form-data"] != nil:
		body, ct := uploadBody(t, map[string]string{"client_msg_id": uuid.NewString(), "caption": "사진"}, filePart{"사진.png", pngFile(t, 40, 30)})
		header["Content-Type"] = ct
		return body
	case op.path == "/api/v1/push/subscriptions":
		header["Content-Type"] = "application/json"
		return bytes.NewReader(fx.subscription)
	}
	media, _ := content["application/json"].(map[string]any)
	example, ok := media["example"]
	if !ok {
		t.Fatalf("%s %s: its JSON body has no example", op.method, op.path)
	}
	raw, err := json.Marshal(example)
	if err != nil {
		t.Fatal(err)
	}
	header["Content-Type"] = "application/json"
	return bytes.NewReader(raw)
}

// checkResponse holds one real answer to the operation's documented responses.
func (d apiDoc) checkResponse(t *testing.T, name string, op apiOperation, resp *http.Response) {
	t.Helper()
	responses, _ := op.op["responses"].(map[string]any)
	documented, ok := responses[fmt.Sprint(resp.StatusCode)].(map[string]any)
	if !ok || resp.StatusCode >= 300 {
		raw, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<10))
		t.Errorf("%s: status %d (%s); the document's example call should succeed with a documented status", name, resp.StatusCode, raw)
		return
	}
	content, _ := d.resolve(t, documented)["content"].(map[string]any)
	if len(content) == 0 {
		if resp.StatusCode != http.StatusNoContent {
			t.Errorf("%s: %d documented without a body", name, resp.StatusCode)
		}
		return
	}
	ct, _, _ := strings.Cut(resp.Header.Get("Content-Type"), ";")
	if ct != "application/json" {
		if content[ct] == nil && content["application/octet-stream"] == nil {
			t.Errorf("%s: Content-Type %q, documented %v", name, ct, slices.Sorted(maps.Keys(content)))
		}
		return
	}
	media, _ := content["application/json"].(map[string]any)
	schema, ok := media["schema"].(map[string]any)
	if !ok {
		t.Errorf("%s: answers JSON, documented %v", name, slices.Sorted(maps.Keys(content)))
		return
	}
	var v any
	if err := json.NewDecoder(resp.Body).Decode(&v); err != nil {
		t.Errorf("%s: %v", name, err)
		return
	}
	for _, p := range d.check(t, "", schema, v) {
		t.Errorf("%s %d: %s", name, resp.StatusCode, p)
	}
}

// check answers how v departs from schema: a required field missing, a value of another
// type or outside its enum, a field the schema does not document.
func (d apiDoc) check(t *testing.T, at string, schema map[string]any, v any) []string {
	t.Helper()
	schema = d.resolve(t, schema)
	if alts, ok := schema["oneOf"].([]any); ok {
		var first []string
		for i, alt := range alts {
			alt, _ := alt.(map[string]any)
			problems := d.check(t, at, alt, v)
			if len(problems) == 0 {
				return nil
			}
			if i == 0 {
				first = problems
			}
		}
		return first
	}
	got := jsonType(v)
	if types := schemaTypes(schema); len(types) > 0 && !slices.Contains(types, got) && !(got == "integer" && slices.Contains(types, "number")) {
		return []string{fmt.Sprintf("%s is %s, documented %v", orRoot(at), got, types)}
	}
	if enum, ok := schema["enum"].([]any); ok && !slices.Contains(enum, v) {
		return []string{fmt.Sprintf("%s is %v, not one of the documented %v", orRoot(at), v, enum)}
	}
	var problems []string
	switch v := v.(type) {
	case map[string]any:
		props, _ := schema["properties"].(map[string]any)
		required, _ := schema["required"].([]any)
		for _, r := range required {
			if _, ok := v[r.(string)]; !ok {
				problems = append(problems, fmt.Sprintf("%s lacks the documented field %q", orRoot(at), r))
			}
		}
		extra, _ := schema["additionalProperties"].(map[string]any)
		for k, fv := range v {
			switch s, ok := props[k].(map[string]any); {
			case ok:
				problems = append(problems, d.check(t, at+"."+k, s, fv)...)
			case extra != nil:
				problems = append(problems, d.check(t, at+"."+k, extra, fv)...)
			case len(props) > 0:
				problems = append(problems, fmt.Sprintf("%s has the field %q, which the document does not name", orRoot(at), k))
			}
		}
	case []any:
		if items, ok := schema["items"].(map[string]any); ok {
			for i, item := range v {
				problems = append(problems, d.check(t, fmt.Sprintf("%s[%d]", at, i), items, item)...)
			}
		}
	}
	return problems
}

func jsonType(v any) string {
	switch v := v.(type) {
	case nil:
		return "null"
	case bool:
		return "boolean"
	case float64:
		if v == math.Trunc(v) {
			return "integer"
		}
		return "number"
	case string:
		return "string"
	case []any:
		return "array"
	default:
		return "object"
	}
}

// schemaTypes answers a schema's "type", a name or a list of names.
func schemaTypes(schema map[string]any) []string {
	switch t := schema["type"].(type) {
	case string:
		return []string{t}
	case []any:
		out := make([]string, len(t))
		for i, s := range t {
			out[i], _ = s.(string)
		}
		return out
	}
	return nil
}

func orRoot(at string) string {
	if at == "" {
		return "the answer"
	}
	return "the answer's " + strings.TrimPrefix(at, ".")
}
