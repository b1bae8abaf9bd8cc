// Package model holds Garrison's wire types: the JSON shapes of the
// Mattermost API v4 (users, teams, channels, posts, errors) that clients
// decode. Field names and omitempty rules follow Mattermost's model package
// so that real Mattermost clients work unchanged; Garrison does not import
// that package.
package model
