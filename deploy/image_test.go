package deploy_test

import (
	"archive/tar"
	"compress/gzip"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/configd/configd/internal/configdtest"
)

// ociDescriptor, ociManifest and ociConfig are the parts of an OCI image
// the test reads (github.com/opencontainers/image-spec, by hand: three
// structs are not worth a module).
type ociDescriptor struct {
	MediaType   string            `json:"mediaType"`
	Digest      string            `json:"digest"`
	Annotations map[string]string `json:"annotations"`
}

type ociManifest struct {
	Config      ociDescriptor     `json:"config"`
	Layers      []ociDescriptor   `json:"layers"`
	Annotations map[string]string `json:"annotations"`
}

type ociConfig struct {
	Config struct {
		User         string
		ExposedPorts map[string]struct{}
		Env          []string
		Entrypoint   []string
		Volumes      map[string]struct{}
		WorkingDir   string
		Labels       map[string]string
	} `json:"config"`
}

// ociArchive is an OCI image archive's files by name.
type ociArchive map[string][]byte

func readOCIArchive(t *testing.T, path string) ociArchive {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	a := ociArchive{}
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return a
		}
		if err != nil {
			t.Fatal(err)
		}
		if h.Typeflag == tar.TypeReg {
			b, err := io.ReadAll(tr)
			if err != nil {
				t.Fatal(err)
			}
			a[filepath.Clean(h.Name)] = b
		}
	}
}

func (a ociArchive) blob(t *testing.T, d ociDescriptor, v any) []byte {
	t.Helper()
	b, ok := a[filepath.Join("blobs", strings.Replace(d.Digest, ":", "/", 1))]
	if !ok {
		t.Fatalf("the archive lacks blob %s", d.Digest)
	}
	if v != nil {
		if err := json.Unmarshal(b, v); err != nil {
			t.Fatalf("blob %s: %v", d.Digest, err)
		}
	}
	return b
}

// unpack extracts a layer (a gzipped or plain tar) into root, keeping
// modes and, as root, owners.
func unpack(t *testing.T, layer []byte, mediaType, root string) map[string]*tar.Header {
	t.Helper()
	var r io.Reader = strings.NewReader(string(layer))
	if strings.HasSuffix(mediaType, "gzip") {
		gz, err := gzip.NewReader(r)
		if err != nil {
			t.Fatal(err)
		}
		r = gz
	}
	headers := map[string]*tar.Header{}
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return headers
		}
		if err != nil {
			t.Fatal(err)
		}
		name := filepath.Clean(h.Name)
		if strings.HasPrefix(name, "..") || filepath.IsAbs(name) {
			t.Fatalf("layer entry %q escapes the root", h.Name)
		}
		headers[name] = h
		path := filepath.Join(root, name)
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(path, os.FileMode(h.Mode).Perm()|os.ModeDir); err != nil {
				t.Fatal(err)
			}
			os.Chmod(path, os.FileMode(h.Mode)&os.ModePerm|os.FileMode(h.Mode)&os.ModeSticky)
		case tar.TypeReg:
			os.MkdirAll(filepath.Dir(path), 0o755)
			f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, os.FileMode(h.Mode).Perm())
			if err != nil {
				t.Fatal(err)
			}
			if _, err := io.Copy(f, tr); err != nil {
				t.Fatal(err)
			}
			f.Close()
		default:
			continue
		}
		if os.Geteuid() == 0 {
			if err := os.Lchown(path, h.Uid, h.Gid); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// image is a built image: its manifest, its configuration, the root of its unpacked file
// system and the headers of its files.
type image struct {
	manifest ociManifest
	config   ociConfig
	root     string
	files    map[string]*tar.Header
}

// buildImage builds the image of kind (scripts/build-image.sh: make image, make image-micro),
// reads the OCI archive, checks what every image must be (non-root, labelled) and unpacks its
// file system.
func buildImage(t *testing.T, kind string) image {
	t.Helper()
	if _, err := exec.LookPath("buildah"); err != nil {
		t.Fatalf("buildah is not installed (make test-deps installs Debian's buildah): %v", err)
	}
	archive := filepath.Join(t.TempDir(), kind+".oci.tar")
	build := exec.Command("bash", "../scripts/build-image.sh", kind, archive)
	build.Env = append(os.Environ(), "VERSION=v0.0.0-imagetest")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build-image.sh %s: %v\n%s", kind, err, out)
	}
	a := readOCIArchive(t, archive)
	var index struct{ Manifests []ociDescriptor }
	if err := json.Unmarshal(a["index.json"], &index); err != nil || len(index.Manifests) != 1 {
		t.Fatalf("index.json: %v, %d manifests", err, len(index.Manifests))
	}
	img := image{root: filepath.Join(t.TempDir(), "rootfs"), files: map[string]*tar.Header{}}
	a.blob(t, index.Manifests[0], &img.manifest)
	a.blob(t, img.manifest.Config, &img.config)
	c := img.config.Config
	if c.User != "65532:65532" {
		t.Errorf("user %q, want the non-root 65532:65532", c.User)
	}
	for _, k := range []string{"org.opencontainers.image.source", "org.opencontainers.image.version", "org.opencontainers.image.revision"} {
		if c.Labels[k] == "" || img.manifest.Annotations[k] == "" {
			t.Errorf("%s: label %q, annotation %q", k, c.Labels[k], img.manifest.Annotations[k])
		}
	}
	if v := c.Labels["org.opencontainers.image.version"]; v != "v0.0.0-imagetest" {
		t.Errorf("version label %q, want VERSION's v0.0.0-imagetest", v)
	}
	for _, l := range img.manifest.Layers {
		for k, v := range unpack(t, a.blob(t, l, nil), l.MediaType, img.root) {
			img.files[k] = v
		}
	}
	for _, f := range []string{"etc/passwd", "etc/ssl/certs", "tmp"} {
		if img.files[f] == nil {
			t.Errorf("the image lacks /%s", f)
		}
	}
	return img
}

// command runs the image's program as the image would: as its user in a chroot of its file
// system when the test runs as root (as CI does), else the unpacked binary as is.
func (img image) command(env []string, args ...string) *exec.Cmd {
	c := img.config.Config
	cmd := exec.Command(c.Entrypoint[0], args...)
	if os.Geteuid() == 0 {
		cmd.SysProcAttr = &syscall.SysProcAttr{Chroot: img.root, Credential: &syscall.Credential{Uid: 65532, Gid: 65532}}
		cmd.Dir = "/"
	} else {
		cmd.Path = filepath.Join(img.root, c.Entrypoint[0])
	}
	cmd.Env = append(slices.Clone(c.Env), env...)
	return cmd
}

// send sends a request, with body when it is not empty and token when it is not empty, and
// returns the answer's status code and body.
func send(t *testing.T, method, url, body, token string) (int, string) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	rsp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer rsp.Body.Close()
	b, err := io.ReadAll(rsp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return rsp.StatusCode, string(b)
}

// TestImageHoldsAWorkingConfigd builds configd's image, checks its configuration and runs the
// configd in it, which writes its database into the image's data dir as the image's user.
func TestImageHoldsAWorkingConfigd(t *testing.T) {
	img := buildImage(t, "configd")
	c := img.config.Config
	if _, ok := c.ExposedPorts["7700/tcp"]; !ok {
		t.Errorf("ports %v lack 7700/tcp", c.ExposedPorts)
	}
	if _, ok := c.Volumes["/var/lib/configd"]; !ok {
		t.Errorf("volumes %v lack the data dir /var/lib/configd", c.Volumes)
	}
	if !slices.Equal(c.Entrypoint, []string{"/usr/bin/configd"}) {
		t.Fatalf("entrypoint %q", c.Entrypoint)
	}
	for _, f := range []string{"usr/bin/configd", "usr/bin/configctl", "var/lib/configd"} {
		if img.files[f] == nil {
			t.Fatalf("the image lacks /%s", f)
		}
	}
	if h := img.files["var/lib/configd"]; h.Uid != 65532 {
		t.Errorf("/var/lib/configd belongs to uid %d, want 65532 (the user configd runs as)", h.Uid)
	}

	// configd as the image runs it: its environment, listening on every address (so
	// authentication is on), a bootstrap token given.
	const token = "image-test-bootstrap-token-0123456789"
	env := []string{"CONFIGD_BOOTSTRAP_TOKEN=" + token, "CONFIGD_HTTP_ADDR=0.0.0.0:0"} // a free port, on every address as in the image
	dataDir := filepath.Join(img.root, "var/lib/configd")
	if os.Geteuid() != 0 {
		env = append(env, "CONFIGD_DATA_DIR="+dataDir)
	}
	p := configdtest.Spawn(t, img.command(env))
	_, port, err := net.SplitHostPort(p.Listening())
	if err != nil {
		t.Fatal(err)
	}
	base := "http://127.0.0.1:" + port
	for _, tc := range []struct {
		method, path, token string
		want                int
	}{
		{http.MethodGet, "/healthz", "", 200},
		{http.MethodPut, "/v1/kv/app/db/timeout", "", 401},
		{http.MethodPut, "/v1/kv/app/db/timeout", token, 200},
		{http.MethodGet, "/v1/kv/app/db/timeout", token, 200},
	} {
		body := ""
		if tc.method == http.MethodPut {
			body = "5s"
		}
		if got, _ := send(t, tc.method, base+tc.path, body, tc.token); got != tc.want {
			t.Errorf("%s %s (token %v): %d, want %d\n%s", tc.method, tc.path, tc.token != "", got, tc.want, p.Log)
		}
	}
	db, err := os.Stat(filepath.Join(dataDir, "configd.db"))
	if err != nil {
		t.Fatalf("the database is not in the image's data dir: %v", err)
	}
	if st, ok := db.Sys().(*syscall.Stat_t); ok && os.Geteuid() == 0 && st.Uid != 65532 {
		t.Errorf("configd.db belongs to uid %d: configd did not run as the image's user", st.Uid)
	}
}

var microListening = regexp.MustCompile(`(?m)^listening on (\S+)$`)

// TestMicroImageHoldsAWorkingGateway builds the gateway's image and runs its micro api, with
// metrics, as the image's user.
func TestMicroImageHoldsAWorkingGateway(t *testing.T) {
	img := buildImage(t, "micro")
	c := img.config.Config
	for _, port := range []string{"8080/tcp", "8082/tcp"} {
		if _, ok := c.ExposedPorts[port]; !ok {
			t.Errorf("ports %v lack %s", c.ExposedPorts, port)
		}
	}
	if !slices.Equal(c.Entrypoint, []string{"/usr/bin/micro"}) || img.files["usr/bin/micro"] == nil {
		t.Fatalf("entrypoint %q, /usr/bin/micro %v", c.Entrypoint, img.files["usr/bin/micro"] != nil)
	}
	p := configdtest.Spawn(t, img.command(nil, "--registry", "memory", "api", "--address", "127.0.0.1:0", "--metrics", "prometheus"))
	base := "http://" + p.WaitLog(microListening)[1]
	if got, _ := send(t, http.MethodGet, base+"/example/call", "", ""); got != http.StatusNotFound {
		t.Errorf("a call of a service nobody registered: %d, want 404\n%s", got, p.Log)
	}
	if got, _ := send(t, http.MethodGet, base+"/metrics", "", ""); got != http.StatusOK {
		t.Errorf("/metrics: %d, want 200\n%s", got, p.Log)
	}
}
