// Package compat is Garrison's compatibility suite: its tests build the
// garrison binary, start it against a throwaway Postgres and drive it with
// the official Mattermost Go driver (model.Client4 and
// model.WebSocketClient from github.com/mattermost/mattermost/server/public
// v0.4.2), the way a Mattermost client does. The package has no code
// outside its tests; it lives in its own module so that the server never
// depends on the driver.
//
// Run it with `make test-compat` or `cd test/compat && go test -race ./...`.
// Without Postgres' server binaries the suite is skipped with a note,
// except under CI=true, where that is a failure.
package compat
