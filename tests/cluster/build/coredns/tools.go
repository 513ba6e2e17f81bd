//go:build tools

// Package tools pins the CoreDNS command for `go build github.com/coredns/coredns`.
package tools

import _ "github.com/coredns/coredns"
