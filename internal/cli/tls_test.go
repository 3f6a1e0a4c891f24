package cli

import (
	"context"
	"regexp"
	"strings"
	"testing"

	"github.com/configd/configd/internal/configdtest"
	"github.com/configd/configd/internal/testserver"
)

// startTLSConfigd runs the whole daemon with TLS from files, requiring
// client certificates when mutual, and returns its host:port.
func startTLSConfigd(t *testing.T, files *testserver.TLSFiles, mutual bool) string {
	t.Helper()
	ca := ""
	if mutual {
		ca = files.CAFile
	}
	return configdtest.Run(t, configdtest.TLS(files.ServerCert, files.ServerKey, ca)).Addr
}

func TestTLS(t *testing.T) {
	files := testserver.NewTLSFiles(t, t.TempDir())
	addr := startTLSConfigd(t, files, false)

	// --ca with host:port talks HTTPS.
	runCLI("", "--addr", addr, "--ca", files.CAFile, "--as", "tester", "set", "app/a", "1").want(t, 0, "", "")
	runCLI("", "--addr", addr, "--ca", files.CAFile, "get", "app/a").want(t, 0, "1", "")
	// So does an https:// address, with the CA from the environment.
	t.Setenv(EnvCA, files.CAFile)
	runCLI("", "--addr", "https://"+addr, "get", "app/a").want(t, 0, "1", "")
	t.Setenv(EnvCA, "")

	// A CA that did not sign configd's certificate: a clear refusal.
	other := testserver.NewTLSFiles(t, t.TempDir())
	runCLI("", "--addr", addr, "--ca", other.CAFile, "get", "app/a").want(t, ExitError, "",
		"~^configctl: TLS with configd at "+regexp.QuoteMeta(addr)+` failed: .*certificate signed by unknown authority.* \(check --ca, --cert and --key`)
	// No --ca on an https:// address: the system's CAs do not know it.
	runCLI("", "--addr", "https://"+addr, "get", "app/a").want(t, ExitError, "", "~unknown authority")
	// Plaintext to the TLS port.
	runCLI("", "--addr", addr, "get", "app/a").want(t, ExitError, "", "~HTTPS")
	// A CA file that is not there.
	runCLI("", "--addr", addr, "--ca", "/no/such/ca.pem", "get", "app/a").want(t, ExitError, "", "~/no/such/ca.pem")
	runCLI("", "--addr", "http://"+addr, "--ca", files.CAFile, "get", "app/a").want(t, ExitUsage, "", "~https://")
}

func TestTLSClientCertificates(t *testing.T) {
	files := testserver.NewTLSFiles(t, t.TempDir())
	addr := startTLSConfigd(t, files, true)

	runCLI("", "--addr", addr, "--ca", files.CAFile, "get", "app/a").want(t, ExitError, "",
		"~^configctl: TLS with configd at .*certificate")
	runCLI("", "--addr", addr, "--ca", files.CAFile, "--cert", files.ClientCert, "--key", files.ClientKey,
		"--as", "tester", "set", "app/a", "1").want(t, 0, "", "")
	t.Setenv(EnvCA, files.CAFile)
	t.Setenv(EnvCert, files.ClientCert)
	t.Setenv(EnvKey, files.ClientKey)
	runCLI("", "--addr", addr, "get", "app/a").want(t, 0, "1", "")
	runCLI("", "--addr", addr, "--key", "", "get", "app/a").want(t, ExitError, "", "~without its key")
}

func TestWatchOverTLS(t *testing.T) {
	files := testserver.NewTLSFiles(t, t.TempDir())
	addr := startTLSConfigd(t, files, true)
	tlsArgs := []string{"--addr", addr, "--ca", files.CAFile, "--cert", files.ClientCert, "--key", files.ClientKey}

	stdout, stderr := configdtest.NewLog(), configdtest.NewLog()
	exited := make(chan struct{})
	code := -1
	go func() {
		defer close(exited)
		code = Main(context.Background(), append(tlsArgs, "watch", "app/", "--count", "1"), strings.NewReader(""), stdout, stderr)
	}()
	if _, err := stderr.Wait(regexp.MustCompile(`watching app at rev \d+`), exited); err != nil {
		t.Fatalf("%v (stdout %q)", err, stdout)
	}
	runCLI("", append(tlsArgs, "--as", "tester", "set", "app/a", "1")...).want(t, 0, "", "")
	if _, err := stdout.Wait(regexp.MustCompile(`rev \d+ by tester: app/a = 1`), exited); err != nil {
		t.Fatal(err)
	}
	<-exited
	if code != 0 {
		t.Errorf("watch exited %d; stderr %q", code, stderr)
	}
}
