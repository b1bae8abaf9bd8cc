// Package push holds the end-to-end tests of push notifications: the real
// garrison and garrison-pushproxy binaries on 127.0.0.1 with a throwaway
// Postgres, a stock headless Firefox ESR that subscribes through
// garrison and receives Web Push from the site's own push service, and the
// crash-safety check of the proxy's outbox (kill -9 with a pending
// delivery).
//
// The binaries are built by the tests unless GARRISON_BIN and
// GARRISON_PUSHPROXY_BIN name them. Without Postgres or firefox-esr the
// tests skip, except under CI=true where that is a failure.
package push
