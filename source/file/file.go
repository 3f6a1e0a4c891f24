// Package file is the source of type file: one YAML or JSON file, or a
// directory of them, watched for changes.
//
//	sources:
//	  - name: defaults
//	    type: file
//	    path: ./config/        # a file, or a directory
//	    mount: app/
//
// # From files to keys
//
// Each document is flattened as Flatten describes (maps become key
// paths, scalars text, lists JSON). Then:
//
//   - path is a file (.yaml, .yml or .json): its keys are the document's
//     keys. Its top level must be a map.
//   - path is a directory: every .yaml, .yml and .json file directly in it
//     (not in subdirectories; names starting with '.' are skipped, which
//     leaves out editors' swap files and Kubernetes' ..data) adds its keys
//     under its name without the extension: db.yaml holding host: x gives
//     db/host. A file whose top level is a scalar or a list gives one key,
//     its name: replicas.yaml holding 3 gives replicas = "3". When two files
//     give the same key (db.yaml and db.json), the first by file name wins
//     and the other is reported as a warning.
//
// # Changes
//
// The source watches the directory (path itself, or the directory holding
// the file) rather than the file, so editors that write a new file and
// rename it over the old one, and Kubernetes' ConfigMap volumes, which swap
// a ..data symlink, are both seen. Any event in that directory schedules a
// new read; a burst of events is read once, after Debounce of quiet. Files
// are read whole and the snapshot replaces the previous one, so a file
// deleted from a directory takes its keys away in the next snapshot.
//
// Bad input never becomes config: when any file does not parse or is not
// UTF-8, or path (or the file it names) is missing, the source emits an
// error and configd keeps the last good snapshot. A missing directory is
// polled with backoff until it appears.
package file

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/configd/configd/plugin"
	"github.com/configd/configd/source"
	"github.com/configd/configd/source/backoff"
	"github.com/configd/configd/source/internal/publish"
)

// Config is the file source's own config: the fields of a sources: entry
// of type file. It is the plugin module source.file.
type Config struct {
	// Path is a file, or a directory of .yaml, .yml and .json files. It
	// need not exist yet. Required.
	Path string `yaml:"path" json:"path,omitempty"`
	// Debounce is how long a burst of file system events must be quiet
	// before the files are read again. Default 100ms. Set in code only,
	// not in a config file.
	Debounce time.Duration `yaml:"-" json:"-"`
}

var _ source.TypeConfig = Config{}

// DefaultDebounce is the default of Config.Debounce.
const DefaultDebounce = 100 * time.Millisecond

// PluginInfo names the module: source.file.
func (Config) PluginInfo() plugin.Info {
	return plugin.Info{ID: source.Namespace + ".file", New: func() plugin.Module { return new(Config) }}
}

// Validate checks that Path is set.
func (c Config) Validate() error {
	if c.Path == "" {
		return errors.New("path is required: a .yaml, .yml or .json file, or a directory of them")
	}
	return nil
}

// NewSource returns a file source; source.New calls it.
func (c Config) NewSource(cfg source.Config, opts ...source.Option) (source.Source, error) {
	abs, err := filepath.Abs(c.Path)
	if err != nil {
		return nil, cfg.Errorf("path %q: %w", c.Path, err)
	}
	if c.Debounce == 0 {
		c.Debounce = DefaultDebounce
	}
	c.Debounce = max(c.Debounce, time.Millisecond)
	o := source.NewOptions(opts...)
	o.Logger = o.Logger.With("source", cfg.Name)
	return &Source{cfg: cfg, own: c, opts: o, path: abs, pub: publish.New()}, nil
}

// Source reads a file or a directory. Build it with source.New.
type Source struct {
	cfg  source.Config
	own  Config
	opts source.Options
	path string // absolute
	pub  *publish.Publisher
}

var _ source.Source = (*Source)(nil)

// Name returns the source's name.
func (s *Source) Name() string { return s.cfg.Name }

// Status returns the source's status. Its Revision counts successful reads.
func (s *Source) Status() source.Status { return s.pub.Status() }

// Close ends Run.
func (s *Source) Close() error {
	s.pub.Close()
	return nil
}

// Run reads the files, emits them, and watches for changes until ctx is
// done or Close is called.
func (s *Source) Run(ctx context.Context, emit func(source.Update)) error {
	ctx, cancel, err := s.pub.Start(ctx, emit)
	if err != nil {
		return err
	}
	defer cancel()
	bo := backoff.Backoff{Min: s.opts.MinBackoff, Max: s.opts.MaxBackoff}
	var reads int64
	for ctx.Err() == nil {
		w, dir, err := s.watch()
		if err != nil {
			s.pub.Error(err)
			if backoff.Sleep(ctx, bo.Next()) != nil {
				break
			}
			continue
		}
		bo.Reset()
		s.loop(ctx, w, dir, &reads)
		w.Close()
	}
	return nil
}

// watchDir is the directory to watch: path when it is a directory, else
// the directory that holds it.
func (s *Source) watchDir() string {
	if fi, err := os.Stat(s.path); err == nil && fi.IsDir() {
		return s.path
	}
	return filepath.Dir(s.path)
}

// watch starts watching the directory that holds the source's files.
func (s *Source) watch() (*fsnotify.Watcher, string, error) {
	dir := s.watchDir()
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, "", fmt.Errorf("file source: watch %s: %w", dir, err)
	}
	if err := w.Add(dir); err != nil {
		w.Close()
		return nil, "", fmt.Errorf("file source: watch %s: %w", dir, err)
	}
	return w, dir, nil
}

// loop reads now and after every burst of events, until the watched
// directory goes away (it returns, and Run watches again) or ctx ends.
func (s *Source) loop(ctx context.Context, w *fsnotify.Watcher, dir string, reads *int64) {
	s.read(reads)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	var burstStart time.Time // zero when no read is pending
	schedule := func() {
		now := time.Now()
		if burstStart.IsZero() {
			burstStart = now
		}
		// Events that never stop (a log file written next to the config)
		// must not postpone the read forever.
		wait := s.own.Debounce
		if limit := burstStart.Add(10 * s.own.Debounce); now.Add(wait).After(limit) {
			wait = max(limit.Sub(now), 0)
		}
		timer.Reset(wait)
	}
	for {
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-w.Events:
			if !ok {
				return
			}
			if filepath.Clean(ev.Name) == dir && ev.Has(fsnotify.Remove|fsnotify.Rename) {
				// The directory itself went away: read (an error now) and
				// watch again once it is back.
				s.read(reads)
				return
			}
			schedule()
		case err, ok := <-w.Errors:
			if !ok {
				return
			}
			// An overflow loses events: read again to be sure.
			s.opts.Logger.Warn("file source: watch error", "err", err)
			schedule()
		case <-timer.C:
			burstStart = time.Time{}
			s.read(reads)
			if s.watchDir() != dir {
				return // path appeared as a directory, or became a file
			}
		}
	}
}

// read reads the files and emits a snapshot or an error.
func (s *Source) read(reads *int64) {
	snap, warnings, err := s.Load()
	if err != nil {
		s.pub.Error(err)
		s.opts.Logger.Warn("file source: read failed; keeping the last good snapshot", "err", err)
		return
	}
	*reads++
	if s.pub.Snapshot(snap, warnings, *reads) {
		for _, w := range warnings {
			s.opts.Logger.Warn("file source: left out", "where", w.Where, "problem", w.Problem)
		}
	}
}

// Load reads the source's files once and returns the snapshot they give.
func (s *Source) Load() (map[string]source.Value, []source.Warning, error) {
	b := source.NewBuilder(s.cfg.MountPrefix(), s.opts.MaxValueSize)
	fi, err := os.Stat(s.path)
	if err != nil {
		return nil, nil, fmt.Errorf("file source: %w", err)
	}
	if !fi.IsDir() {
		if err := addFile(b, s.path, ""); err != nil {
			return nil, nil, err
		}
		snap, w := b.Result()
		return snap, w, nil
	}
	entries, err := os.ReadDir(s.path)
	if err != nil {
		return nil, nil, fmt.Errorf("file source: %w", err)
	}
	names := make([]string, 0, len(entries))
	for _, e := range entries {
		if _, ok := FormatOf(e.Name()); ok && !strings.HasPrefix(e.Name(), ".") {
			names = append(names, e.Name())
		}
	}
	slices.Sort(names)
	for _, name := range names {
		full := filepath.Join(s.path, name)
		fi, err := os.Stat(full) // follows symlinks, as ConfigMaps need
		if errors.Is(err, os.ErrNotExist) {
			continue // removed since ReadDir, or a dangling symlink
		}
		if err != nil {
			return nil, nil, fmt.Errorf("file source: %w", err)
		}
		if !fi.Mode().IsRegular() {
			continue
		}
		stem := strings.TrimSuffix(name, filepath.Ext(name))
		if err := addFile(b, full, stem); err != nil {
			return nil, nil, err
		}
	}
	snap, w := b.Result()
	return snap, w, nil
}

func addFile(b *source.Builder, full, base string) error {
	format, ok := FormatOf(full)
	if !ok {
		return fmt.Errorf("file source: %s: not a .yaml, .yml or .json file", full)
	}
	data, err := os.ReadFile(full)
	if err != nil {
		if base != "" && errors.Is(err, os.ErrNotExist) {
			return nil // removed from the directory since it was listed: an event follows
		}
		return fmt.Errorf("file source: %w", err)
	}
	if err := addDocument(b, full, base, data, format); err != nil {
		return fmt.Errorf("file source: %w", err)
	}
	return nil
}
