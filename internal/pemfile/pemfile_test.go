package pemfile_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/configd/configd/internal/pemfile"
	"github.com/configd/configd/internal/testserver"
)

func TestErrorsNameTheFileAndItsUse(t *testing.T) {
	dir := t.TempDir()
	files := testserver.NewTLSFiles(t, dir)
	notPEM := filepath.Join(dir, "not.pem")
	if err := os.WriteFile(notPEM, []byte("hello"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := pemfile.CertPool("CA", files.CAFile); err != nil {
		t.Fatalf("CA bundle: %v", err)
	}
	if _, err := pemfile.KeyPair("client certificate", files.ClientCert, "client key", files.ClientKey); err != nil {
		t.Fatalf("key pair: %v", err)
	}
	for _, tc := range []struct {
		name string
		err  func() error
		want string
	}{
		{"missing", func() error { _, err := pemfile.CertPool("CA", "/no/such.pem"); return err }, "CA file /no/such.pem: no such file or directory"},
		{"not PEM", func() error { _, err := pemfile.CertPool("CA", notPEM); return err }, "CA file " + notPEM + ": no PEM certificate in it"},
		{"key of another cert", func() error {
			_, err := pemfile.KeyPair("client certificate", files.ClientCert, "client key", files.ServerKey)
			return err
		}, "client certificate " + files.ClientCert + " and key " + files.ServerKey},
	} {
		if err := tc.err(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want it to say %q", tc.name, err, tc.want)
		}
	}
}
