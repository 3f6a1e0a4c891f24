// Package all registers every source type that ships with configd: a blank
// import makes file, env, consul and etcd available to source.New.
//
//	import _ "github.com/configd/configd/source/all"
package all

import (
	_ "github.com/configd/configd/source/consul" // type consul
	_ "github.com/configd/configd/source/env"    // type env
	_ "github.com/configd/configd/source/etcd"   // type etcd
	_ "github.com/configd/configd/source/file"   // type file
)
