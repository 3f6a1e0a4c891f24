package configdtest

import (
	"errors"
	"os"
	"os/exec"
)

// ChromiumPath finds the browser the browser tests drive: $CONFIGD_CHROMIUM, or chromium on
// PATH (make test-deps installs it).
func ChromiumPath() (string, error) {
	if p := os.Getenv("CONFIGD_CHROMIUM"); p != "" {
		return p, nil
	}
	for _, name := range []string{"chromium", "chromium-browser", "/usr/bin/chromium"} {
		if p, err := exec.LookPath(name); err == nil {
			return p, nil
		}
	}
	return "", errors.New("chromium not found (looked for $CONFIGD_CHROMIUM, chromium, chromium-browser): run make test-deps")
}
