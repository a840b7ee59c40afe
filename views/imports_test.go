package views

import (
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// TestViewsDependOnNeitherStoreNorAuth: the views render what the handlers hand them.
// They never reach the database's types or the sign-in machinery, directly or through
// another package.
func TestViewsDependOnNeitherStoreNorAuth(t *testing.T) {
	goBin := filepath.Join(runtime.GOROOT(), "bin", "go")
	out, err := exec.Command(goBin, "list", "-deps", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, pkg := range strings.Fields(string(out)) {
		switch pkg {
		case "github.com/dreamseed/messenger/store", "github.com/dreamseed/messenger/auth":
			t.Errorf("views depends on %s", pkg)
		}
	}
}
