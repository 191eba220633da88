// Package loadtest drives many concurrent HTTP API calls at a skillbox
// server and checks every answer: each call carries a unique nonce that the
// trivial skill load/echo returns, so a lost, duplicated or crossed answer
// is caught. It reports latency percentiles and throughput; the caller
// measures the server's memory and leaks.
package loadtest
