// Package configdpb is the gRPC API of configd: the messages and the Config
// service generated from configd.proto. The generated code is committed, so
// a build needs no protoc; `make proto` regenerates it.
package configdpb

//go:generate protoc --proto_path=. --go_out=. --go_opt=paths=source_relative --go-grpc_out=. --go-grpc_opt=paths=source_relative configd.proto
