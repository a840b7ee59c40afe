package messenger

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"unicode"
)

// verbs finds the places a text fills in: fmt verbs (%s, %d, %[2]s) and the service
// worker's {n}.
var verbs = regexp.MustCompile(`%(\[\d+\])?[-+# 0]*\d*[a-zA-Z%]|\{[a-z]+\}`)

// Every key of the table has words in both languages, and both fill in the same things.
func TestWordsHaveBothLanguages(t *testing.T) {
	for key, w := range words {
		if strings.TrimSpace(w.ko) == "" {
			t.Errorf("%s lacks its Korean text", key)
		}
		if strings.TrimSpace(w.en) == "" {
			t.Errorf("%s lacks its English text", key)
		}
		ko, en := fills(w.ko), fills(w.en)
		if !slices.Equal(ko, en) {
			t.Errorf("%s fills in %v in Korean but %v in English", key, ko, en)
		}
	}
}

// fills answers the verbs of s, sorted, without their argument indexes.
func fills(s string) []string {
	var out []string
	for _, v := range verbs.FindAllString(s, -1) {
		if v != "%%" {
			out = append(out, regexp.MustCompile(`\[\d+\]`).ReplaceAllString(v, ""))
		}
	}
	slices.Sort(out)
	return out
}

// An error reads in the reader's language and logs in English; an error among its
// arguments is worded in the same language; English text where a key belongs finds the key.
func TestErrorText(t *testing.T) {
	err := Errorf(EINVALID, "error.body.too_long", 4000)
	if got := ErrorText(err, LangKorean); got != "메시지는 최대 4000자까지 보낼 수 있습니다." {
		t.Errorf("Korean: %q", got)
	}
	if got := ErrorText(err, LangEnglish); got != "A message can be at most 4000 characters." {
		t.Errorf("English: %q", got)
	}
	if !strings.Contains(err.Error(), "A message can be at most 4000 characters.") {
		t.Errorf("Error() = %q, want the English words", err.Error())
	}
	wrapped := Errorf(EINVALID, "%s: %s", "a.png", Errorf(EINVALID, "error.image.damaged"))
	if got := ErrorText(wrapped, LangKorean); got != "a.png: 사진이 손상되었거나 일부가 빠져 있습니다." {
		t.Errorf("wrapped Korean: %q", got)
	}
	if got := ErrorText(errInternal{}, LangKorean); got != Text(LangKorean, "error.internal") {
		t.Errorf("internal: %q", got)
	}
}

type errInternal struct{}

func (errInternal) Error() string { return "database password is hunter2" }

// A system notice reads in either language.
func TestSystemEventText(t *testing.T) {
	e := SystemEvent{Type: EventInvited, Actor: "김민준", Targets: []string{"이서연", "Jane"}}
	if got := e.Text(LangKorean); got != "김민준님이 이서연님, Jane님을 초대했습니다." {
		t.Errorf("Korean: %q", got)
	}
	if got := e.Text(LangEnglish); got != "김민준 invited 이서연 and Jane." {
		t.Errorf("English: %q", got)
	}
	if got := (SystemEvent{Type: "unknown"}).Text(LangEnglish); got != "" {
		t.Errorf("unknown event: %q", got)
	}
}

// Every text the code names by a literal key is in the table: an error's words
// (Errorf, and the helpers that hand it a key: the store's notFound, chat's validUUID), a
// page's (T, Tf) and the rest (Text, Textf). An error may still be a bare format of other
// errors ("%s"), never English text where its key belongs.
func TestEveryKeyIsInTheTable(t *testing.T) {
	keyArg := map[string]int{"Errorf": 1, "T": 1, "Tf": 1, "Text": 1, "Textf": 1, "notFound": 1, "validUUID": 1}
	fset := token.NewFileSet()
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && path != "." && (strings.HasPrefix(d.Name(), ".") || d.Name() == "node_modules") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, 0)
		if err != nil {
			return err
		}
		ast.Inspect(f, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok {
				return true
			}
			var name string
			switch fn := call.Fun.(type) {
			case *ast.Ident:
				name = fn.Name
			case *ast.SelectorExpr:
				if pkg, ok := fn.X.(*ast.Ident); !ok || (pkg.Name != "messenger" && pkg.Name != "views") {
					return true
				}
				name = fn.Sel.Name
			}
			i, ok := keyArg[name]
			if !ok || len(call.Args) <= i {
				return true
			}
			lit, ok := call.Args[i].(*ast.BasicLit)
			if !ok || lit.Kind != token.STRING {
				return true
			}
			key, _ := strconv.Unquote(lit.Value)
			_, known := words[key]
			letterless := strings.IndexFunc(verbs.ReplaceAllString(key, ""), unicode.IsLetter) < 0
			if !known && !(name == "Errorf" && letterless) {
				t.Errorf("%s: %s(%q): no such key in the table", fset.Position(lit.Pos()), name, key)
			}
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
