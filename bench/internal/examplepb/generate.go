// Package examplepb is the talk's example service, generated from
// example.proto: the messages, the grpc-go service, and grpc-gateway's
// reverse proxy (HTTP rules in example.yaml).
package examplepb

//go:generate protoc --go_out=. --go_opt=paths=source_relative --go-grpc_out=. --go-grpc_opt=paths=source_relative --grpc-gateway_out=. --grpc-gateway_opt=paths=source_relative,grpc_api_configuration=example.yaml example.proto
