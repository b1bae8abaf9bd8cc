package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
)

// The fixture every command shares. Names are fixed so a later run reuses
// what an earlier one created.
const (
	teamName     = "loadtest"
	channelName  = "fanout"
	userPassword = "Loadtest-Passw0rd!"
)

// userName is the name of the i-th (from 0) load-test user.
func userName(i int) string { return fmt.Sprintf("loadtest-user-%04d", i+1) }

// ensureUser finds the i-th user or creates it. Looking up first spares
// the server a password hash per user when a run reuses the users.
func ensureUser(ctx context.Context, admin *client, i int) (user, error) {
	name := userName(i)
	u, err := admin.userByUsername(ctx, name)
	var ae *apiError
	if errors.As(err, &ae) && ae.Status == http.StatusNotFound {
		u, err = admin.createUser(ctx, name, name+"@example.com", userPassword)
		if isExists(err) { // created meanwhile
			u, err = admin.userByUsername(ctx, name)
		}
	}
	if err != nil {
		return user{}, fmt.Errorf("user %s: %w", name, err)
	}
	return u, nil
}

// ensureFixture creates (or finds) the team and the channel, with the admin
// a member of both.
func ensureFixture(ctx context.Context, admin *client, adminID string) (team, channel, error) {
	t, err := admin.createTeam(ctx, teamName, "Load test")
	if isExists(err) {
		t, err = admin.teamByName(ctx, teamName)
	}
	if err != nil {
		return team{}, channel{}, fmt.Errorf("team %s: %w", teamName, err)
	}
	if err := ignoreExists(admin.addTeamMember(ctx, t.ID, adminID)); err != nil {
		return team{}, channel{}, fmt.Errorf("team %s: add admin: %w", teamName, err)
	}
	ch, err := admin.createChannel(ctx, t.ID, channelName, "Fan-out")
	if isExists(err) {
		ch, err = admin.channelByName(ctx, t.ID, channelName)
	}
	if err != nil {
		return team{}, channel{}, fmt.Errorf("channel %s: %w", channelName, err)
	}
	if err := ignoreExists(admin.addChannelMember(ctx, ch.ID, adminID)); err != nil {
		return team{}, channel{}, fmt.Errorf("channel %s: add admin: %w", channelName, err)
	}
	if t.ID == "" || ch.ID == "" {
		return team{}, channel{}, errors.New("set-up: the server answered a team or channel without an id")
	}
	return t, ch, nil
}

// join makes the user a member of the team and the channel; being one
// already is fine.
func join(ctx context.Context, admin *client, t team, ch channel, u user) error {
	if err := ignoreExists(admin.addTeamMember(ctx, t.ID, u.ID)); err != nil {
		return fmt.Errorf("user %s: join team: %w", u.Username, err)
	}
	if err := ignoreExists(admin.addChannelMember(ctx, ch.ID, u.ID)); err != nil {
		return fmt.Errorf("user %s: join channel: %w", u.Username, err)
	}
	return nil
}

func ignoreExists(err error) error {
	if isExists(err) {
		return nil
	}
	return err
}
