package etcd

import "github.com/configd/configd/source"

// SetAfterLoad makes src call fn between its Get and its Watch, so a test
// can compact etcd past the revision the watch will ask for.
func SetAfterLoad(src source.Source, fn func()) { src.(*Source).afterLoad = fn }
